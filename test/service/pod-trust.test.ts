import t from 'tap'
import { trustedPods } from '../../lib/service/pod-trust'
import type { PodRecord } from '../../lib/service/types'

const pod = (id: string, node: string, ips: string[]): PodRecord => ({ v: 1, id, node, ifname: 'eth0', ips, labels: { app: 'web' } })
const nodes = new Map([['n1', ['10.244.1.0/24', 'fd00:244:1::/64']], ['n2', ['10.244.2.0/24']]])

t.test('a pod counts only with every address inside its own node\'s pod subnets', async t => {
  const cases: Array<[string, PodRecord, string | undefined]> = [
    ['both families inside n1', pod('a', 'n1', ['10.244.1.5', 'fd00:244:1::5']), undefined],
    ['IPv4 inside n2', pod('b', 'n2', ['10.244.2.9']), undefined],
    ['another node\'s subnet', pod('c', 'n1', ['10.244.2.9']), "address 10.244.2.9 is outside node n1's pod subnets (10.244.1.0/24, fd00:244:1::/64)"],
    ['an underlay address', pod('d', 'n2', ['192.0.2.1']), "address 192.0.2.1 is outside node n2's pod subnets (10.244.2.0/24)"],
    ['one good, one bad address', pod('e', 'n1', ['10.244.1.6', 'fd00:999::1']), "address fd00:999::1 is outside node n1's pod subnets (10.244.1.0/24, fd00:244:1::/64)"],
    ['IPv6 on a node without an IPv6 subnet', pod('f', 'n2', ['fd00:244:1::7']), "address fd00:244:1::7 is outside node n2's pod subnets (10.244.2.0/24)"],
    ['a node without a record', pod('g', 'gone', ['10.244.3.1']), 'node gone has no record']
  ]
  for (const [name, p, reason] of cases) {
    const r = trustedPods([p], nodes)
    if (reason === undefined) {
      t.strictSame(r, { accepted: [p], rejected: [] }, name)
    } else {
      t.strictSame(r, { accepted: [], rejected: [{ pod: p, reason }] }, name)
    }
  }
  const all = cases.map(c => c[1])
  t.strictSame(trustedPods(all, nodes).accepted.map(p => p.id), ['a', 'b'], 'in order, the good ones kept among bad ones')
})

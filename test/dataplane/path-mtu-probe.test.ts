// Path-MTU discovery against real kernel paths: two sites, each a namespace on a 1500-byte link
// to its router, the routers joined by a 1400-byte link (IPv4 and IPv6). From site A: the
// router's own address answers at the full 1500 (one probe); site B is found at 1400, from the
// router's "too big" (two probes); with the router's ICMP errors dropped (a black hole) the
// search bisects to within 8 bytes below 1400; a peer that answers no echo is "unknown"; a
// jumbo link is found at 9000.
import t from 'tap'
import type { PathMtuVerdict } from '../../lib/mesh/path-mtu-search'
import type { RouteLookup } from '../../lib/dataplane/rtnl'
import { Lab, type Netns } from '../harness/netns'
import { forgetPathMtu, twoSites } from '../harness/two-sites'

const AGENT = 'test/dataplane/path-mtu-agent.ts'

const discover = async (ns: Netns, ip: string, localMtu: number): Promise<PathMtuVerdict> =>
  JSON.parse((await ns.runTs(AGENT, ['discover', ip, String(localMtu)], { timeoutMs: 60_000 })).stdout) as PathMtuVerdict
const routeTo = async (ns: Netns, ip: string): Promise<RouteLookup> =>
  JSON.parse((await ns.runTs(AGENT, ['route', ip])).stdout) as RouteLookup

t.test('path MTU toward peers behind a narrow link', async t => {
  const lab = new Lab({ t })
  const { a, b, r1, aLink: [aIf, r1a] } = await twoSites(lab)
  t.ok(await a.pings('198.51.100.11') && await a.pings('2001:db8:b::11'), 'site B is reachable from site A')

  t.test('on the same link: the full interface MTU, one probe', async t => {
    for (const ip of ['192.0.2.254', '2001:db8:a::1']) t.match(await discover(a, ip, 1500), { kind: 'known', mtu: 1500, probes: 1 }, ip)
  })

  t.test("across the 1400-byte link: the router's answer, two probes", async t => {
    for (const ip of ['198.51.100.11', '2001:db8:b::11']) {
      await forgetPathMtu(a)
      t.match(await discover(a, ip, 1500), { kind: 'known', mtu: 1400, probes: 2, blackHole: false }, ip)
    }
    t.match(await discover(a, '198.51.100.11', 1500), { kind: 'known', mtu: 1400, probes: 2 }, 'again, from the kernel\'s cached answer')
    t.match(await routeTo(a, '198.51.100.11'), { gateway: '192.0.2.254', mtu: 1400 }, 'the route lookup shows the next hop and the learned path MTU')
    const onLink = await routeTo(a, '192.0.2.254')
    t.ok(onLink.gateway === undefined && onLink.mtu === undefined && onLink.oif !== undefined, `on-link: no next hop, no learned MTU (${JSON.stringify(onLink)})`)
  })

  t.test('an ICMP black hole: bisected to within 8 bytes below 1400', async t => {
    await r1.exec('nft', ['-f', '-'], {
      input: 'table inet blackhole {\n chain out {\n  type filter hook output priority 0;\n  icmp type destination-unreachable drop\n  icmpv6 type packet-too-big drop\n }\n}\n'
    })
    t.teardown(async () => { await r1.exec('nft', ['delete', 'table', 'inet', 'blackhole']).catch(() => {}) })
    for (const ip of ['198.51.100.11', '2001:db8:b::11']) {
      await forgetPathMtu(a)
      const v = await discover(a, ip, 1500)
      t.match(v, { kind: 'known', blackHole: true }, ip)
      if (v.kind === 'known') t.ok(v.mtu <= 1400 && v.mtu > 1392, `${ip}: ${v.mtu} after ${v.probes} probes`)
    }
  })

  t.test('a peer that answers no echo: unknown', async t => {
    await b.exec('nft', ['-f', '-'], { input: 'table inet noecho {\n chain in {\n  type filter hook input priority 0;\n  icmp type echo-request drop\n  icmpv6 type echo-request drop\n }\n}\n' })
    t.teardown(async () => { await b.exec('nft', ['delete', 'table', 'inet', 'noecho']).catch(() => {}) })
    await forgetPathMtu(a)
    t.match(await discover(a, '198.51.100.11', 1500), { kind: 'unknown', reason: /no echo reply even at 576 bytes/ })
  })

  t.test('a jumbo link: 9000', async t => {
    await a.ip(['link', 'set', aIf, 'mtu', '9000'])
    await r1.ip(['link', 'set', r1a, 'mtu', '9000'])
    t.match(await discover(a, '192.0.2.254', 9000), { kind: 'known', mtu: 9000, probes: 1 })
    await forgetPathMtu(a)
    t.match(await discover(a, '198.51.100.11', 9000), { kind: 'known', mtu: 1400 }, 'and a narrow hop beyond it is still found')
  })
})

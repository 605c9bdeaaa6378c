// The service table's summary and its comparison (podmeshctl diff): from a ruleset, from nft's
// JSON (as nft 1.0.6 prints it for a table render.ts wrote), and one line per difference.
import t from 'tap'
import { serviceRuleset } from '../../lib/service/ruleset'
import type { ServiceSpec } from '../../lib/service/types'
import { compareTables, rulesetSummary, type TableSummary } from '../../lib/service/table-summary'
import { summarizeTable, TableReadError } from '../../lib/dataplane/nft/table-read'

const web: ServiceSpec = {
  v: 1, name: 'web', type: 'NodePort', clusterIPs: ['10.96.0.10'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30080 }],
  selector: { app: 'web' }, sessionAffinity: 'ClientIP', externalTrafficPolicy: 'Cluster'
}
const idle: ServiceSpec = { ...web, name: 'idle', type: 'ClusterIP', clusterIPs: ['10.96.0.11'], ports: [{ protocol: 'udp', port: 53, targetPort: 53 }], sessionAffinity: 'None' }
const ruleset = serviceRuleset({
  services: [web, idle],
  endpoints: new Map([['web', [{ ip: '10.244.1.2', node: 'n1', pod: 'p1', local: true }]], ['idle', []]]),
  node: 'n1',
  nodeAddresses: { 4: ['192.0.2.11'] }
})

t.test('a ruleset summarized: chains with rule counts, affinity sets, dispatch and endpoint elements, hairpin pairs', async t => {
  const s = rulesetSummary(ruleset)
  const cluster = s.elements.get('cluster-ips-v4') ?? new Map()
  t.strictSame([...cluster.keys()], ['10.96.0.10 . tcp . 80'], 'web dispatched by its cluster IP')
  const target = cluster.get('10.96.0.10 . tcp . 80') ?? ''
  t.match(target, /^svc-/, 'with ClientIP affinity web has a chain of its own')
  t.ok(s.chains.has(target), 'and that chain is among the chains')
  t.equal(s.sets.size, 1, 'one affinity set (one endpoint)')
  t.strictSame([...(s.elements.get('no-endpoints-v4') ?? new Map())], [['10.96.0.11 . udp . 53', 'reject-no-endpoints']])
  t.equal(s.elements.get('node-ports-v4')?.size, 1)
  t.strictSame([...(s.elements.get('hairpin-v4') ?? new Map())], [['10.244.1.2 . 10.244.1.2', '']], 'the local endpoint as a hairpin pair')
  t.strictSame(compareTables(s, s), [], 'a summary equals itself')

  const plain = rulesetSummary(serviceRuleset({
    services: [{ ...web, sessionAffinity: 'None' }],
    endpoints: new Map([['web', [{ ip: '10.244.1.2', node: 'n1', pod: 'p1', local: true }, { ip: '10.244.2.2', node: 'n2', pod: 'p2', local: false }]]]),
    node: 'n1',
    nodeAddresses: { 4: ['192.0.2.11'] }
  }))
  t.equal(plain.elements.get('cluster-ips-v4')?.get('10.96.0.10 . tcp . 80'), 'pick-tcp-2-v4', 'without affinity: the shared pick chain for two endpoints')
  t.strictSame([...(plain.elements.get('endpoints-tcp-v4') ?? new Map())], [['10.96.0.10 . 80 . 0', '10.244.1.2 . 8080'], ['10.96.0.10 . 80 . 1', '10.244.2.2 . 8080']], 'its endpoints as slots')
})

t.test('nft JSON summarized', async t => {
  const json = [
    { metainfo: { version: '1.0.6', json_schema_version: 1 } },
    { table: { family: 'inet', name: 'podmesh', handle: 1 } },
    { map: { family: 'inet', name: 'cluster-ips-v4', table: 'podmesh', type: ['ipv4_addr', 'inet_proto', 'inet_service'], map: 'verdict', elem: [[{ concat: ['10.96.0.11', 'udp', 53] }, { goto: { target: 'reject-no-endpoints' } }], [{ concat: ['10.96.0.10', 'tcp', 80] }, { goto: { target: 'svc-a' } }]] } },
    { map: { family: 'inet', name: 'node-ports-v6', table: 'podmesh', type: ['inet_proto', 'inet_service'], map: 'verdict' } },
    { set: { family: 'inet', name: 'aff', table: 'podmesh', type: 'ipv4_addr', flags: ['timeout'], timeout: 10, elem: [{ elem: { val: '10.244.9.9', expires: 7 } }] } },
    { set: { family: 'inet', name: 'hairpin-v4', table: 'podmesh', type: ['ipv4_addr', 'ipv4_addr'], elem: [{ concat: ['10.244.1.2', '10.244.1.2'] }] } },
    { set: { family: 'inet', name: 'hairpin-v6', table: 'podmesh', type: ['ipv6_addr', 'ipv6_addr'] } },
    { map: { family: 'inet', name: 'endpoints-tcp-v4', table: 'podmesh', type: ['ipv4_addr', 'inet_service', 'integer'], map: 'ipv4_addr . inet_service', elem: [[{ concat: ['10.96.0.10', 80, 0] }, { concat: ['10.244.1.2', 8080] }]] } },
    { chain: { family: 'inet', table: 'podmesh', name: 'svc-a', handle: 5 } },
    { chain: { family: 'inet', table: 'podmesh', name: 'ep-b', handle: 7 } },
    { rule: { family: 'inet', table: 'podmesh', chain: 'svc-a', handle: 10, expr: [] } },
    { rule: { family: 'inet', table: 'podmesh', chain: 'svc-a', handle: 11, expr: [] } }
  ]
  const s = summarizeTable(json)
  t.strictSame([...s.chains], [['svc-a', 2], ['ep-b', 0]])
  t.strictSame([...s.sets], ['aff', 'hairpin-v4', 'hairpin-v6'])
  t.equal(s.elements.get('hairpin-v6')?.size, 0, 'an empty set (nft leaves out its elem) has no elements, and is there')
  t.strictSame([...(s.elements.get('hairpin-v4') ?? new Map())], [['10.244.1.2 . 10.244.1.2', '']], 'a set\'s elements, with nothing mapped')
  t.strictSame([...(s.elements.get('aff') ?? new Map())], [['10.244.9.9', '']], 'a dynamic set\'s element, unwrapped from its timeout')
  t.strictSame([...(s.elements.get('endpoints-tcp-v4') ?? new Map())], [['10.96.0.10 . 80 . 0', '10.244.1.2 . 8080']], 'an endpoint map: slot → address . port')
  t.strictSame([...(s.elements.get('cluster-ips-v4') ?? new Map())], [['10.96.0.11 . udp . 53', 'reject-no-endpoints'], ['10.96.0.10 . tcp . 80', 'svc-a']])
  t.equal(s.elements.get('node-ports-v6')?.size, 0, 'a map without elements')
  t.throws(() => summarizeTable([{ map: { name: 'cluster-ips-v4', elem: [[{ concat: ['10.96.0.10', 'tcp', 80] }, { accept: null }]] } }]),
    new TableReadError('map cluster-ips-v4: an element value of unknown shape: {"accept":null}'), 'a verdict podmesh never writes is an error, named')
  t.throws(() => summarizeTable([{ map: { name: 'x', elem: [{}] } }]), TableReadError, 'an element of unknown shape too')
})

t.test('differences, one line each', async t => {
  const want: TableSummary = {
    chains: new Map([['svc-a', 1], ['pick-tcp-2-v4', 2]]),
    sets: new Set(['aff-a']),
    elements: new Map([['cluster-ips-v4', new Map([['10.96.0.10 . tcp . 80', 'svc-a'], ['10.96.0.12 . tcp . 80', 'svc-a']])], ['node-ports-v4', new Map()]])
  }
  const have: TableSummary = {
    chains: new Map([['svc-a', 3], ['pick-udp-1-v4', 1], ['services', 4], ['nat-prerouting', 1]]),
    sets: new Set(['aff-x', 'node-addresses-v4', 'hairpin-v4']),
    elements: new Map([['cluster-ips-v4', new Map([['10.96.0.10 . tcp . 80', 'svc-b'], ['10.96.0.13 . udp . 53', 'reject-no-endpoints']])]])
  }
  t.strictSame(compareTables(want, have), [
    'service chain svc-a has 3 rules, want 1',
    'service chain pick-tcp-2-v4 missing',
    'service chain pick-udp-1-v4 not wanted',
    'service set aff-a missing',
    'service set aff-x not wanted',
    'service map cluster-ips-v4: 10.96.0.10 . tcp . 80 goes to svc-b, want svc-a',
    'service map cluster-ips-v4: 10.96.0.12 . tcp . 80 → svc-a missing',
    'service map cluster-ips-v4: 10.96.0.13 . udp . 53 → reject-no-endpoints not wanted',
    'service map node-ports-v4 missing'
  ], 'the frame\'s chains and NodePort address sets are not differences')
})

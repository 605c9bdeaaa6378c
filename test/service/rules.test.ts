// The desired service ruleset of one node: which map elements, endpoint slots, shared pick chains,
// affinity chains and sets each kind of service gives, table-tested on one fixture of services
// and endpoints.
import t, { type Test } from 'tap'
import {
  affinitySetName, endpointElements, nodePortChainName, objectName, pickChainName, rulesetTable, serviceChainName,
  type EndpointElement, type EndpointMapName, type MapElement, type MapName, type PickKind, type ServiceRuleset
} from '../../lib/service/rules'
import { PRESET_PICK_COUNTS, serviceRuleset } from '../../lib/service/ruleset'
import type { Endpoint, ServicePort, ServiceSpec } from '../../lib/service/types'

const NODE = 'n1'
const web: ServiceSpec = {
  v: 1, name: 'web', type: 'ClusterIP', clusterIPs: ['10.96.0.10', 'fd00:96::10'],
  ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector: { app: 'web' },
  sessionAffinity: 'None', externalTrafficPolicy: 'Cluster'
}
const ep = (ip: string, node: string): Endpoint => ({ ip, node, pod: `p-${ip}`, local: node === NODE })
const webEps = [ep('10.244.1.3', 'n1'), ep('10.244.2.5', 'n2'), ep('fd00:244:1::3', 'n1')]

const p80 = web.ports[0] as ServicePort
const build = (services: ServiceSpec[], endpoints: Record<string, Endpoint[]>, addrs: { 4?: string[], 6?: string[] } = { 4: ['192.0.2.1'] }): ServiceRuleset =>
  serviceRuleset({ services, endpoints: new Map(Object.entries(endpoints)), node: NODE, nodeAddresses: addrs })

const elements = (r: ServiceRuleset, map: MapName): MapElement[] => rulesetTable(r).maps[map]
/** An endpoint map as "key → endpoint:port" lines, the way nft shows it. */
const slots = (r: ServiceRuleset, map: EndpointMapName): string[] =>
  rulesetTable(r).endpoints[map].flatMap(endpointElements).map((e: EndpointElement) => `${e.ip ?? ''}/${e.protocol}/${e.port}/${e.slot} → ${e.endpoint}:${e.targetPort}`)

const pick4 = (n: number): { goto: string } => ({ goto: pickChainName('cluster-ip', 'tcp', 4, n) })
/** The pick chains kept for 1 to PRESET_PICK_COUNTS endpoints. */
const presets = (kind: PickKind, f: 4 | 6, protocol: 'tcp' | 'udp' = 'tcp'): string[] =>
  Array.from({ length: PRESET_PICK_COUNTS }, (_, i) => pickChainName(kind, protocol, f, i + 1))

t.test('names: deterministic, identifier-safe, short for long names, distinct when the readable part collides', async t => {
  t.equal(objectName('svc', ['web', 'tcp', '80', 'v4']), objectName('svc', ['web', 'tcp', '80', 'v4']))
  const long = objectName('aff', ['x'.repeat(200), 'tcp', '80', 'fd00:244:1::3', '10800'])
  t.ok(long.length <= 4 + 9 + 40, long)
  t.match(long, /^[a-z][a-z0-9_.-]*$/)
  t.match(affinitySetName(web, p80, 'fd00:244:1::3', 60), /^aff-[a-z2-7]{8}-web-tcp-80-fd00_244_1__3-60$/)
  t.match(serviceChainName(web, p80, 6), /^svc-[a-z2-7]{8}-web-tcp-80-v6$/)
  // Two names that sanitize alike stay apart through the hash.
  t.not(objectName('svc', ['a:b']), objectName('svc', ['a_b']))
  t.not(objectName('svc', ['x'.repeat(50) + 'a']), objectName('svc', ['x'.repeat(50) + 'b']))
  t.strictSame([pickChainName('cluster-ip', 'tcp', 4, 3), pickChainName('node-port', 'udp', 6, 1), pickChainName('node-port-masquerade', 'sctp', 4, 10)],
    ['pick-tcp-3-v4', 'pick-node-port-udp-1-v6', 'pick-node-port-masquerade-sctp-10-v4'])
})

t.test('the ruleset by kind of service', async t => {
  const cases: Array<{ name: string, services: ServiceSpec[], endpoints: Record<string, Endpoint[]>, check: (t: Test, r: ServiceRuleset) => void }> = [
    {
      name: 'ClusterIP, dual stack: a map element per family to the pick chain of its endpoint count, a slot per endpoint',
      services: [web],
      endpoints: { web: webEps },
      check: (t, r) => {
        t.strictSame(r.chains['pick-tcp-1-v6'], [{ kind: 'pickEndpoint', family: 6, protocol: 'tcp', via: 'clusterIP', count: 1 }])
        t.strictSame(r.chains['pick-tcp-2-v4'], [{ kind: 'pickEndpoint', family: 4, protocol: 'tcp', via: 'clusterIP', count: 2 }])
        t.strictSame(Object.keys(r.chains).sort(), [...presets('cluster-ip', 4), ...presets('cluster-ip', 6)].sort(), 'the preset pick chains of the two families')
        t.strictSame(r.services.web?.chains, {}, 'no chain of its own')
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: pick4(2) }])
        t.strictSame(elements(r, 'cluster-ips-v6'), [{ ip: 'fd00:96::10', protocol: 'tcp', port: 80, verdict: { goto: 'pick-tcp-1-v6' } }])
        t.strictSame(slots(r, 'endpoints-tcp-v4'), ['10.96.0.10/tcp/80/0 → 10.244.1.3:8080', '10.96.0.10/tcp/80/1 → 10.244.2.5:8080'])
        t.strictSame(slots(r, 'endpoints-tcp-v6'), ['fd00:96::10/tcp/80/0 → fd00:244:1::3:8080'])
        t.strictSame(elements(r, 'no-endpoints-v4'), [])
        t.strictSame(elements(r, 'node-ports-v4'), [])
        t.strictSame(rulesetTable(r).sets, {})
        t.strictSame(r.hairpin, { 4: ['10.244.1.3'], 6: ['fd00:244:1::3'] }, 'hairpin pairs for this node\'s endpoints only')
      }
    },
    {
      name: 'no endpoints: the cluster IPs reject, no chains, no slots',
      services: [{ ...web, type: 'NodePort', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: {},
      check: (t, r) => {
        t.strictSame(rulesetTable(r).chains, {})
        t.strictSame(elements(r, 'cluster-ips-v4'), [])
        t.strictSame(slots(r, 'endpoints-tcp-v4'), [])
        t.strictSame(elements(r, 'no-endpoints-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: 'reject' }])
        t.strictSame(elements(r, 'no-endpoints-v6'), [{ ip: 'fd00:96::10', protocol: 'tcp', port: 80, verdict: 'reject' }])
        t.strictSame(elements(r, 'no-endpoint-node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: 'reject' }])
        t.strictSame(r.hairpin, { 4: [], 6: [] })
      }
    },
    {
      name: 'endpoints in one family only: the other family rejects',
      services: [web],
      endpoints: { web: [ep('10.244.1.3', 'n1')] },
      check: (t, r) => {
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: pick4(1) }])
        t.strictSame(elements(r, 'no-endpoints-v6'), [{ ip: 'fd00:96::10', protocol: 'tcp', port: 80, verdict: 'reject' }])
      }
    },
    {
      name: 'NodePort, policy Cluster: a pick chain that marks for masquerade, then any endpoint by NodePort',
      services: [{ ...web, type: 'NodePort', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: { web: webEps },
      check: (t, r) => {
        t.strictSame(r.chains['pick-node-port-masquerade-tcp-2-v4'], [{ kind: 'masquerade' }, { kind: 'pickEndpoint', family: 4, protocol: 'tcp', via: 'nodePort', count: 2 }])
        t.strictSame(elements(r, 'node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: { goto: 'pick-node-port-masquerade-tcp-2-v4' } }])
        t.strictSame(elements(r, 'node-ports-v6'), [{ protocol: 'tcp', port: 30080, verdict: { goto: 'pick-node-port-masquerade-tcp-1-v6' } }])
        t.strictSame(slots(r, 'node-port-endpoints-tcp-v4'), ['/tcp/30080/0 → 10.244.1.3:8080', '/tcp/30080/1 → 10.244.2.5:8080'])
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: pick4(2) }], 'and the cluster IP as ever')
      }
    },
    {
      name: 'NodePort, policy Local: local endpoints only, no masquerade',
      services: [{ ...web, type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: { web: webEps },
      check: (t, r) => {
        t.strictSame(r.chains['pick-node-port-tcp-1-v4'], [{ kind: 'pickEndpoint', family: 4, protocol: 'tcp', via: 'nodePort', count: 1 }])
        t.strictSame(elements(r, 'node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: { goto: 'pick-node-port-tcp-1-v4' } }])
        t.strictSame(slots(r, 'node-port-endpoints-tcp-v4'), ['/tcp/30080/0 → 10.244.1.3:8080'])
        // The cluster IP still uses every endpoint.
        t.strictSame(slots(r, 'endpoints-tcp-v4'), ['10.96.0.10/tcp/80/0 → 10.244.1.3:8080', '10.96.0.10/tcp/80/1 → 10.244.2.5:8080'])
      }
    },
    {
      name: 'NodePort, policy Local, no local endpoint: this node refuses the NodePort, the cluster IP works',
      services: [{ ...web, type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: { web: [ep('10.244.2.5', 'n2')] },
      check: (t, r) => {
        t.strictSame(elements(r, 'node-ports-v4'), [])
        t.strictSame(slots(r, 'node-port-endpoints-tcp-v4'), [])
        t.strictSame(elements(r, 'no-endpoint-node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: 'reject' }])
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: pick4(1) }])
        t.strictSame(Object.keys(r.chains).sort(), presets('cluster-ip', 4).sort(), 'no NodePort pick chains')
      }
    },
    {
      name: 'ClientIP affinity: the service\'s own chain, a set per endpoint checked first, then a cascade that remembers the client',
      services: [{ ...web, clusterIPs: ['10.96.0.10'], sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 60 }],
      endpoints: { web: webEps },
      check: (t, r) => {
        const a1 = affinitySetName(web, p80, '10.244.1.3', 60)
        const a2 = affinitySetName(web, p80, '10.244.2.5', 60)
        const s = serviceChainName(web, p80, 4)
        t.strictSame(rulesetTable(r).sets, { [a1]: { family: 4, timeoutSeconds: 60 }, [a2]: { family: 4, timeoutSeconds: 60 } })
        t.strictSame(r.services.web?.chains, {
          [s]: [
            { kind: 'affinityDnat', family: 4, set: a1, protocol: 'tcp', ip: '10.244.1.3', port: 8080 },
            { kind: 'affinityDnat', family: 4, set: a2, protocol: 'tcp', ip: '10.244.2.5', port: 8080 },
            { kind: 'chooseDnat', family: 4, among: 2, set: a1, protocol: 'tcp', ip: '10.244.1.3', port: 8080 },
            { kind: 'chooseDnat', family: 4, among: 1, set: a2, protocol: 'tcp', ip: '10.244.2.5', port: 8080 }
          ]
        })
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: { goto: s } }])
        t.strictSame(slots(r, 'endpoints-tcp-v4'), [], 'no slots: the chain DNATs')
        t.strictSame(r.chains, {}, 'no pick chain')
      }
    },
    {
      name: 'ClientIP affinity and NodePort: Cluster marks and goes to the service chain, Local chooses among local endpoints',
      services: [
        { ...web, name: 'np-cluster', clusterIPs: ['10.96.0.10'], type: 'NodePort', sessionAffinity: 'ClientIP', ports: [{ ...p80, nodePort: 30080 }] },
        { ...web, name: 'np-local', clusterIPs: ['10.96.0.11'], type: 'NodePort', sessionAffinity: 'ClientIP', externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30081 }] }
      ],
      endpoints: { 'np-cluster': webEps, 'np-local': webEps },
      check: (t, r) => {
        const c = { ...web, name: 'np-cluster' }
        const l = { ...web, name: 'np-local' }
        t.strictSame(r.services['np-cluster']?.chains[nodePortChainName(c, p80, 4)], [{ kind: 'masquerade' }, { kind: 'goto', chain: serviceChainName(c, p80, 4) }])
        const set = affinitySetName(l, p80, '10.244.1.3', 10800)
        t.strictSame(r.services['np-local']?.chains[nodePortChainName(l, p80, 4)], [
          { kind: 'affinityDnat', family: 4, set, protocol: 'tcp', ip: '10.244.1.3', port: 8080 },
          { kind: 'chooseDnat', family: 4, among: 1, set, protocol: 'tcp', ip: '10.244.1.3', port: 8080 }
        ])
        t.strictSame(elements(r, 'node-ports-v4').map(e => e.verdict), [{ goto: nodePortChainName(c, p80, 4) }, { goto: nodePortChainName(l, p80, 4) }])
      }
    },
    {
      name: 'a clash of cluster IP and port: the service first by name wins, with its endpoints',
      services: [{ ...web, name: 'zeta' }, web],
      endpoints: { web: webEps, zeta: [ep('10.244.9.9', 'n2')] },
      check: (t, r) => {
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: pick4(2) }])
        t.strictSame(slots(r, 'endpoints-tcp-v4'), ['10.96.0.10/tcp/80/0 → 10.244.1.3:8080', '10.96.0.10/tcp/80/1 → 10.244.2.5:8080'])
        t.strictSame(r.services.zeta?.maps, { 'cluster-ips-v4': [], 'no-endpoints-v6': [] }, 'zeta keeps none of its elements')
        // A key is claimed across the nat and the reject map: zeta, without IPv6 endpoints, does not refuse web's IPv6 address.
        t.strictSame(elements(r, 'no-endpoints-v6'), [])
        t.strictSame(Object.keys(r.services.zeta?.picks ?? {}), [], 'nor its pick chain')
      }
    },
    {
      name: 'UDP and several ports: an element and slots per port and protocol',
      services: [{ ...web, clusterIPs: ['10.96.0.10'], ports: [{ protocol: 'udp', port: 53, targetPort: 5353 }, { protocol: 'tcp', port: 53, targetPort: 5353 }] }],
      endpoints: { web: [ep('10.244.1.3', 'n1'), ep('10.244.1.3', 'n1')] },
      check: (t, r) => {
        t.strictSame(elements(r, 'cluster-ips-v4').map(e => `${e.protocol}/${e.port}`), ['udp/53', 'tcp/53'])
        // The same address twice is one endpoint.
        t.strictSame(slots(r, 'endpoints-udp-v4'), ['10.96.0.10/udp/53/0 → 10.244.1.3:5353'])
        t.strictSame(slots(r, 'endpoints-tcp-v4'), ['10.96.0.10/tcp/53/0 → 10.244.1.3:5353'])
        t.strictSame(Object.keys(r.chains).sort(), [...presets('cluster-ip', 4), ...presets('cluster-ip', 4, 'udp')].sort(), 'pick chains per protocol')
      }
    }
  ]
  for (const c of cases) t.test(c.name, async t => { c.check(t, build(c.services, c.endpoints)) })
})

t.test('frame: mark and NodePort addresses per family, deduplicated and sorted', async t => {
  const r = serviceRuleset({ services: [], endpoints: new Map(), node: NODE, nodeAddresses: { 4: ['198.51.100.2', '192.0.2.1', '192.0.2.1', 'fd00::1'], 6: ['2001:db8::1'] }, options: { masqueradeMark: 0x8000 } })
  t.strictSame(r.frame, { masqueradeMark: 0x8000, nodePortAddresses: { 4: ['192.0.2.1', '198.51.100.2'], 6: ['2001:db8::1'] } })
})

t.test('the same input in another order gives the same ruleset', async t => {
  const a = build([web, { ...web, name: 'api' }], { web: webEps, api: [...webEps].reverse() })
  const b = build([{ ...web, name: 'api' }, web], { web: [...webEps].reverse(), api: webEps })
  t.strictSame(a, b)
  t.strictSame(Object.keys(a.services), ['api', 'web'], 'services in name order')
})

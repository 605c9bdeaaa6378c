// The desired service ruleset of one node: which chains, sets and map elements each kind of
// service gives, table-tested on one fixture of services and endpoints.
import t, { type Test } from 'tap'
import {
  affinitySetName, endpointChainName, nodePortChainName, objectName, serviceChainName, serviceRuleset,
  type MapElement, type MapName, type ServiceRuleset
} from '../../lib/service/rules'
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

const elements = (r: ServiceRuleset, map: MapName): MapElement[] => Object.values(r.maps[map])

t.test('names: deterministic, identifier-safe, short for long names, distinct when the readable part collides', async t => {
  t.equal(objectName('svc', ['web', 'tcp', '80', 'v4']), objectName('svc', ['web', 'tcp', '80', 'v4']))
  const long = objectName('ep', ['x'.repeat(200), 'tcp', '80', 'fd00:244:1::3', '8080'])
  t.ok(long.length <= 4 + 9 + 40, long)
  t.match(long, /^[a-z][a-z0-9_.-]*$/)
  t.match(endpointChainName(web, p80, 'fd00:244:1::3'), /^ep-[a-z2-7]{8}-web-tcp-80-fd00_244_1__3-8080$/)
  // Two names that sanitize alike stay apart through the hash.
  t.not(objectName('svc', ['a:b']), objectName('svc', ['a_b']))
  t.not(objectName('svc', ['x'.repeat(50) + 'a']), objectName('svc', ['x'.repeat(50) + 'b']))
})

t.test('the ruleset by kind of service', async t => {
  const cases: Array<{ name: string, services: ServiceSpec[], endpoints: Record<string, Endpoint[]>, check: (t: Test, r: ServiceRuleset) => void }> = [
    {
      name: 'ClusterIP, dual stack: a service chain per family choosing at random, an endpoint chain per address',
      services: [web],
      endpoints: { web: webEps },
      check: (t, r) => {
        const s4 = serviceChainName(web, p80, 4)
        const s6 = serviceChainName(web, p80, 6)
        const e1 = endpointChainName(web, p80, '10.244.1.3')
        const e2 = endpointChainName(web, p80, '10.244.2.5')
        const e6 = endpointChainName(web, p80, 'fd00:244:1::3')
        t.strictSame(r.chains, {
          [e1]: [{ kind: 'masqueradeFrom', family: 4, saddr: '10.244.1.3' }, { kind: 'dnat', family: 4, protocol: 'tcp', ip: '10.244.1.3', port: 8080 }],
          [e2]: [{ kind: 'masqueradeFrom', family: 4, saddr: '10.244.2.5' }, { kind: 'dnat', family: 4, protocol: 'tcp', ip: '10.244.2.5', port: 8080 }],
          [s4]: [{ kind: 'randomEndpoint', chains: [e1, e2] }],
          [e6]: [{ kind: 'masqueradeFrom', family: 6, saddr: 'fd00:244:1::3' }, { kind: 'dnat', family: 6, protocol: 'tcp', ip: 'fd00:244:1::3', port: 8080 }],
          [s6]: [{ kind: 'randomEndpoint', chains: [e6] }]
        })
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: { goto: s4 } }])
        t.strictSame(elements(r, 'cluster-ips-v6'), [{ ip: 'fd00:96::10', protocol: 'tcp', port: 80, verdict: { goto: s6 } }])
        t.strictSame(elements(r, 'no-endpoints-v4'), [])
        t.strictSame(elements(r, 'node-ports-v4'), [])
        t.strictSame(r.sets, {})
      }
    },
    {
      name: 'no endpoints: the cluster IPs reject, no chains',
      services: [{ ...web, type: 'NodePort', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: {},
      check: (t, r) => {
        t.strictSame(r.chains, {})
        t.strictSame(elements(r, 'cluster-ips-v4'), [])
        t.strictSame(elements(r, 'no-endpoints-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: 'reject' }])
        t.strictSame(elements(r, 'no-endpoints-v6'), [{ ip: 'fd00:96::10', protocol: 'tcp', port: 80, verdict: 'reject' }])
        t.strictSame(elements(r, 'no-endpoint-node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: 'reject' }])
      }
    },
    {
      name: 'endpoints in one family only: the other family rejects',
      services: [web],
      endpoints: { web: [ep('10.244.1.3', 'n1')] },
      check: (t, r) => {
        t.equal(elements(r, 'cluster-ips-v4').length, 1)
        t.strictSame(elements(r, 'no-endpoints-v6'), [{ ip: 'fd00:96::10', protocol: 'tcp', port: 80, verdict: 'reject' }])
      }
    },
    {
      name: 'NodePort, policy Cluster: masquerade, then the service chain (any endpoint)',
      services: [{ ...web, type: 'NodePort', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: { web: webEps },
      check: (t, r) => {
        const ext = nodePortChainName(web, p80, 4)
        t.strictSame(r.chains[ext], [{ kind: 'masquerade' }, { kind: 'goto', chain: serviceChainName(web, p80, 4) }])
        t.strictSame(elements(r, 'node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: { goto: ext } }])
        t.strictSame(elements(r, 'node-ports-v6'), [{ protocol: 'tcp', port: 30080, verdict: { goto: nodePortChainName(web, p80, 6) } }])
      }
    },
    {
      name: 'NodePort, policy Local: local endpoints only, no masquerade',
      services: [{ ...web, type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: { web: webEps },
      check: (t, r) => {
        const ext = nodePortChainName(web, p80, 4)
        t.strictSame(r.chains[ext], [{ kind: 'randomEndpoint', chains: [endpointChainName(web, p80, '10.244.1.3')] }])
        t.strictSame(elements(r, 'node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: { goto: ext } }])
        // The cluster IP still uses every endpoint.
        t.strictSame(r.chains[serviceChainName(web, p80, 4)], [{ kind: 'randomEndpoint', chains: [endpointChainName(web, p80, '10.244.1.3'), endpointChainName(web, p80, '10.244.2.5')] }])
      }
    },
    {
      name: 'NodePort, policy Local, no local endpoint: this node refuses the NodePort, the cluster IP works',
      services: [{ ...web, type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30080 }] }],
      endpoints: { web: [ep('10.244.2.5', 'n2')] },
      check: (t, r) => {
        t.equal(r.chains[nodePortChainName(web, p80, 4)], undefined)
        t.strictSame(elements(r, 'node-ports-v4'), [])
        t.strictSame(elements(r, 'no-endpoint-node-ports-v4'), [{ protocol: 'tcp', port: 30080, verdict: 'reject' }])
        t.equal(elements(r, 'cluster-ips-v4').length, 1)
      }
    },
    {
      name: 'ClientIP affinity: a set per endpoint, checked before the random choice, updated in the endpoint chain',
      services: [{ ...web, clusterIPs: ['10.96.0.10'], sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 60 }],
      endpoints: { web: webEps },
      check: (t, r) => {
        const a1 = affinitySetName(web, p80, '10.244.1.3', 60)
        const a2 = affinitySetName(web, p80, '10.244.2.5', 60)
        const e1 = endpointChainName(web, p80, '10.244.1.3')
        const e2 = endpointChainName(web, p80, '10.244.2.5')
        t.strictSame(r.sets, { [a1]: { family: 4, timeoutSeconds: 60 }, [a2]: { family: 4, timeoutSeconds: 60 } })
        t.strictSame(r.chains[serviceChainName(web, p80, 4)], [
          { kind: 'affinityCheck', family: 4, set: a1, chain: e1 },
          { kind: 'affinityCheck', family: 4, set: a2, chain: e2 },
          { kind: 'randomEndpoint', chains: [e1, e2] }
        ])
        t.strictSame(r.chains[e1], [
          { kind: 'masqueradeFrom', family: 4, saddr: '10.244.1.3' },
          { kind: 'affinityUpdate', family: 4, set: a1 },
          { kind: 'dnat', family: 4, protocol: 'tcp', ip: '10.244.1.3', port: 8080 }
        ])
      }
    },
    {
      name: 'a clash of cluster IP and port: the service first by name wins',
      services: [{ ...web, name: 'zeta' }, web],
      endpoints: { web: webEps, zeta: webEps },
      check: (t, r) => {
        t.strictSame(elements(r, 'cluster-ips-v4'), [{ ip: '10.96.0.10', protocol: 'tcp', port: 80, verdict: { goto: serviceChainName(web, p80, 4) } }])
      }
    },
    {
      name: 'UDP and several ports: a chain per port and protocol',
      services: [{ ...web, clusterIPs: ['10.96.0.10'], ports: [{ protocol: 'udp', port: 53, targetPort: 5353 }, { protocol: 'tcp', port: 53, targetPort: 5353 }] }],
      endpoints: { web: [ep('10.244.1.3', 'n1'), ep('10.244.1.3', 'n1')] },
      check: (t, r) => {
        t.strictSame(elements(r, 'cluster-ips-v4').map(e => `${e.protocol}/${e.port}`), ['udp/53', 'tcp/53'])
        const udp = { protocol: 'udp', port: 53, targetPort: 5353 } as const
        t.strictSame(r.chains[endpointChainName(web, udp, '10.244.1.3')]?.[1], { kind: 'dnat', family: 4, protocol: 'udp', ip: '10.244.1.3', port: 5353 })
        // The same address twice is one endpoint.
        t.strictSame(r.chains[serviceChainName(web, udp, 4)], [{ kind: 'randomEndpoint', chains: [endpointChainName(web, udp, '10.244.1.3')] }])
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
})

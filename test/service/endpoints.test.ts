// Which pods back which service: one endpoint per address of every selected pod, `local` for this
// node's pods, in one order whatever order the pods come in.
import t from 'tap'
import { resolveEndpoints } from '../../lib/service/endpoints'
import type { Endpoint, PodRecord, ServiceSpec } from '../../lib/service/types'

const svc = (name: string, selector: Record<string, string>): ServiceSpec => ({
  v: 1, name, type: 'ClusterIP', clusterIPs: ['10.96.0.10'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster'
})
const pod = (node: string, id: string, ips: string[], labels: Record<string, string>): PodRecord => ({ v: 1, id, node, ifname: 'eth0', ips, labels })
const ep = (ip: string, node: string, pod: string, local: boolean): Endpoint => ({ ip, node, pod, local })

const PODS = [
  pod('node-2', 'b1', ['fd00:10:244:2::7', '10.244.2.7'], { app: 'web', tier: 'front' }),
  pod('node-1', 'a2', ['10.244.1.20'], { app: 'web', tier: 'back' }),
  pod('node-1', 'a1', ['10.244.1.9', 'fd00:10:244:1::9'], { app: 'web', tier: 'front' }),
  pod('node-1', 'a3', ['10.244.1.30'], { app: 'db' }),
  pod('node-3', 'c1', ['10.244.3.2'], { tier: 'front' })
]

t.test('endpoints by service, as a table', async t => {
  const cases: Array<{ name: string, services: ServiceSpec[], pods: PodRecord[], self: string, want: Record<string, Endpoint[]> }> = [
    {
      name: 'one pair: every address of every matching pod, sorted by node, id, family',
      services: [svc('web', { app: 'web' })],
      pods: PODS,
      self: 'node-1',
      want: {
        web: [
          ep('10.244.1.9', 'node-1', 'a1', true), ep('fd00:10:244:1::9', 'node-1', 'a1', true),
          ep('10.244.1.20', 'node-1', 'a2', true),
          ep('10.244.2.7', 'node-2', 'b1', false), ep('fd00:10:244:2::7', 'node-2', 'b1', false)
        ]
      }
    },
    {
      name: 'two pairs: both must match; local follows self',
      services: [svc('front', { tier: 'front', app: 'web' })],
      pods: PODS,
      self: 'node-2',
      want: { front: [ep('10.244.1.9', 'node-1', 'a1', false), ep('fd00:10:244:1::9', 'node-1', 'a1', false), ep('10.244.2.7', 'node-2', 'b1', true), ep('fd00:10:244:2::7', 'node-2', 'b1', true)] }
    },
    {
      name: 'no pod matches, an empty selector, a value no pod has: no endpoints, but the service is there',
      services: [svc('none', { app: 'cache' }), svc('empty', {}), svc('other', { tier: 'middle' })],
      pods: PODS,
      self: 'node-1',
      want: { none: [], empty: [], other: [] }
    },
    {
      name: 'no pods at all',
      services: [svc('web', { app: 'web' })],
      pods: [],
      self: 'node-1',
      want: { web: [] }
    },
    {
      name: 'an address two pods report is one endpoint, the first pod\'s (node, then id)',
      services: [svc('web', { app: 'web' })],
      pods: [pod('node-2', 'x', ['10.244.9.9'], { app: 'web' }), pod('node-1', 'z', ['10.244.9.9'], { app: 'web' }), pod('node-1', 'y', ['10.244.9.9'], { app: 'web' })],
      self: 'node-2',
      want: { web: [ep('10.244.9.9', 'node-1', 'y', false)] }
    },
    {
      name: 'IPv4 before IPv6, addresses in numeric order (not text order)',
      services: [svc('web', { app: 'web' })],
      pods: [pod('n', 'p', ['fd00::10', '10.0.0.10'], { app: 'web' }), pod('n', 'p', ['fd00::9', '10.0.0.9'], { app: 'web' })],
      self: 'x',
      want: { web: [ep('10.0.0.9', 'n', 'p', false), ep('10.0.0.10', 'n', 'p', false), ep('fd00::9', 'n', 'p', false), ep('fd00::10', 'n', 'p', false)] }
    },
    {
      name: 'inherited properties are not labels',
      services: [svc('proto', { constructor: 'x' })],
      pods: [pod('n', 'p', ['10.0.0.1'], {})],
      self: 'n',
      want: { proto: [] }
    }
  ]
  for (const c of cases) {
    const got = resolveEndpoints(c.services, c.pods, c.self)
    t.strictSame(Object.fromEntries(got), c.want, c.name)
    t.strictSame([...got.keys()], c.services.map(s => s.name), `${c.name}: services in the order given`)
  }
})

t.test('the order of the input does not matter', async t => {
  const services = [svc('web', { app: 'web' }), svc('front', { tier: 'front' })]
  const want = Object.fromEntries(resolveEndpoints(services, PODS, 'node-1'))
  t.ok((want.front?.length ?? 0) > 0 && (want.web?.length ?? 0) > 0, 'both services have endpoints')
  const reversed = [...PODS].reverse()
  t.strictSame(Object.fromEntries(resolveEndpoints(services, reversed, 'node-1')), want, 'pods reversed')
  const rotated = [...PODS.slice(2), ...PODS.slice(0, 2)]
  t.strictSame(Object.fromEntries(resolveEndpoints(services, new Set(rotated), 'node-1')), want, 'pods rotated, from a Set')
})

t.test('many services over many pods: each finds only its own', async t => {
  const services = Array.from({ length: 2000 }, (_, i) => svc(`s${i}`, { app: `a${i}`, env: 'prod' }))
  const pods = Array.from({ length: 20_000 }, (_, i) => pod(`node-${i % 7}`, `p${i}`, [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`], { app: `a${i % 2000}`, env: 'prod' }))
  const got = resolveEndpoints(services, pods, 'node-0')
  t.equal(got.size, 2000)
  t.ok([...got.values()].every(e => e.length === 10), 'ten endpoints each')
  t.strictSame(got.get('s3')?.map(e => e.pod).sort(), Array.from({ length: 10 }, (_, k) => `p${3 + 2000 * k}`).sort(), 's3 has the pods labelled a3')
})

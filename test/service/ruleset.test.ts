// The incremental builder: after every step of a sequence of inputs its ruleset equals one built
// from scratch, services that did not change keep their part (the same object), and the diff
// against the previous build, which skips those by identity, equals the diff of the same two
// rulesets compared field by field (as after a trip through JSON).
import t, { type Test } from 'tap'
import { pickChainName, type ServiceRuleset } from '../../lib/service/rules'
import { PRESET_PICK_COUNTS, RulesetBuilder, serviceRuleset } from '../../lib/service/ruleset'
import { diffRulesets } from '../../lib/service/rules-diff'
import type { Endpoint, ServiceSpec } from '../../lib/service/types'

const spec = (name: string, clusterIP: string, more: Partial<ServiceSpec> = {}): ServiceSpec => ({
  v: 1, name, type: 'ClusterIP', clusterIPs: [clusterIP], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }],
  selector: { app: name }, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster', ...more
})
const ep = (ip: string, node = 'n1'): Endpoint => ({ ip, node, pod: `p-${ip}`, local: node === 'n1' })

const a = spec('a', '10.96.0.1')
const b = spec('b', '10.96.0.2')
const c = spec('c', '10.96.0.3', { sessionAffinity: 'ClientIP' })
const aClash = spec('a-twin', '10.96.0.1')
const ab = [ep('10.244.1.2'), ep('10.244.1.3')]
const many = Array.from({ length: PRESET_PICK_COUNTS + 4 }, (_, i) => ep(`10.244.3.${i + 1}`))
const presets = Array.from({ length: PRESET_PICK_COUNTS }, (_, i) => pickChainName('cluster-ip', 'tcp', 4, i + 1)).sort()

/** `same`: services whose part must be the very object of the previous step's ruleset. */
interface Step { name: string, services: ServiceSpec[], endpoints: Record<string, Endpoint[]>, same: string[], check?: (t: Test, r: ServiceRuleset) => void }

const steps: Step[] = [
  { name: 'three services', services: [a, b, c], endpoints: { a: ab, b: [ep('10.244.1.2')], c: ab }, same: [] },
  { name: 'nothing changed, new endpoint arrays of the same content', services: [a, b, c], endpoints: { a: [...ab], b: [ep('10.244.1.2')], c: ab }, same: ['a', 'b', 'c'] },
  {
    name: 'one endpoint of a swapped: only a is rebuilt',
    services: [a, b, c],
    endpoints: { a: [ep('10.244.1.2'), ep('10.244.1.9')], b: [ep('10.244.1.2')], c: ab },
    same: ['b', 'c'],
    check: (t, r) => t.strictSame(r.hairpin[4], ['10.244.1.2', '10.244.1.3', '10.244.1.9'], 'c still uses 10.244.1.3')
  },
  {
    name: 'a loses an endpoint: its element goes to the pick chain of one; the pick chains stay the preset ones',
    services: [a, b, c],
    endpoints: { a: [ep('10.244.1.2')], b: [ep('10.244.1.2')], c: ab },
    same: ['b', 'c'],
    check: (t, r) => t.strictSame(Object.keys(r.chains), presets)
  },
  {
    name: 'b grows past the preset counts: its pick chain comes',
    services: [a, b, c],
    endpoints: { a: [ep('10.244.1.2')], b: many, c: ab },
    same: ['a', 'c'],
    check: (t, r) => t.strictSame(Object.keys(r.chains), [...presets, pickChainName('cluster-ip', 'tcp', 4, many.length)].sort())
  },
  {
    name: 'and shrinks again: it goes',
    services: [a, b, c],
    endpoints: { a: [ep('10.244.1.2')], b: [ep('10.244.1.2')], c: ab },
    same: ['a', 'c'],
    check: (t, r) => t.strictSame(Object.keys(r.chains), presets)
  },
  {
    name: 'a service spec rebuilt from etcd (a new object, the same value) keeps its part',
    services: [{ ...a, ports: a.ports.map(p => ({ ...p })) }, b, c],
    endpoints: { a: [ep('10.244.1.2')], b: [ep('10.244.1.2')], c: ab },
    same: ['a', 'b', 'c']
  },
  {
    name: 'a twin claims a\'s cluster IP later by name: a keeps it',
    services: [a, aClash, b, c],
    endpoints: { a: [ep('10.244.1.2')], 'a-twin': ab, b: [ep('10.244.1.2')], c: ab },
    same: ['a', 'b', 'c'],
    check: (t, r) => t.strictSame(r.services['a-twin']?.maps, { 'cluster-ips-v4': [] })
  },
  {
    name: 'a goes: the twin gets the cluster IP, with its endpoints',
    services: [aClash, b, c],
    endpoints: { 'a-twin': ab, b: [ep('10.244.1.2')], c: ab },
    same: ['b', 'c'],
    check: (t, r) => t.strictSame(r.services['a-twin']?.endpoints['endpoints-tcp-v4']?.[0]?.endpoints, ['10.244.1.2', '10.244.1.3'])
  },
  {
    name: 'c moves to another node: its endpoints are no longer local, the hairpin pairs go',
    services: [aClash, b, c],
    endpoints: { 'a-twin': [ep('10.244.1.2')], b: [ep('10.244.1.2')], c: [ep('10.244.2.2', 'n2'), ep('10.244.2.3', 'n2')] },
    same: ['b'],
    check: (t, r) => t.strictSame(r.hairpin[4], ['10.244.1.2'])
  },
  { name: 'every service goes', services: [], endpoints: {}, same: [], check: (t, r) => t.strictSame([r.chains, r.hairpin, r.services], [{}, { 4: [], 6: [] }, {}]) }
]

t.test('a sequence of inputs through one builder', async t => {
  const builder = new RulesetBuilder()
  let previous: ServiceRuleset | undefined
  for (const s of steps) {
    await t.test(s.name, async t => {
      const input = { services: s.services, endpoints: new Map(Object.entries(s.endpoints)), node: 'n1', nodeAddresses: { 4: ['192.0.2.1'] } }
      const r = builder.build(input)
      t.strictSame(r, serviceRuleset(input), 'the same as from scratch')
      for (const name of s.same) t.equal(r.services[name], previous?.services[name], `${name} keeps its part`)
      if (previous !== undefined) {
        const structural = diffRulesets(JSON.parse(JSON.stringify(previous)) as ServiceRuleset, JSON.parse(JSON.stringify(r)) as ServiceRuleset)
        t.strictSame(diffRulesets(previous, r), structural, 'the diff by identity is the diff by value')
      }
      s.check?.(t, r)
      previous = r
    })
  }
})

t.test('a build with nothing changed returns the last ruleset itself; a new NodePort address only a new frame', async t => {
  const builder = new RulesetBuilder()
  const input = { services: [a, b], endpoints: new Map([['a', ab]]), node: 'n1', nodeAddresses: { 4: ['192.0.2.1'] } }
  const first = builder.build(input)
  t.equal(builder.build({ ...input, endpoints: new Map([['a', [...ab]]]) }), first)
  const moved = builder.build({ ...input, nodeAddresses: { 4: ['192.0.2.9'] } })
  t.not(moved, first)
  t.equal(moved.services, first.services)
  t.equal(diffRulesets(first, moved), 'full')
})

t.test('two specs of one name: the first counts', async t => {
  const r = serviceRuleset({ services: [a, { ...a, clusterIPs: ['10.96.0.99'] }], endpoints: new Map([['a', ab]]), node: 'n1', nodeAddresses: {} })
  t.strictSame(r.services.a?.maps['cluster-ips-v4']?.map(e => e.ip), ['10.96.0.1'])
})

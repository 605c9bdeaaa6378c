// The nft scripts for podmesh's service table: the full sync's exact text for a small ruleset,
// and partial updates computed from the diff of two rulesets (what an endpoint change touches).
import t from 'tap'
import { renderChange, renderFullSync, renderRemoval, ruleText } from '../../lib/dataplane/nft/render'
import { diffRulesets, isEmptyChange, type RulesetChange } from '../../lib/service/rules-diff'
import { affinitySetName, endpointChainName, nodePortChainName, serviceChainName, serviceRuleset, type ServiceRuleset } from '../../lib/service/rules'
import type { Endpoint, ServicePort, ServiceSpec } from '../../lib/service/types'

const web: ServiceSpec = {
  v: 1, name: 'web', type: 'ClusterIP', clusterIPs: ['10.96.0.10'],
  ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector: { app: 'web' },
  sessionAffinity: 'None', externalTrafficPolicy: 'Cluster'
}
const p80 = web.ports[0] as ServicePort
const ep = (ip: string): Endpoint => ({ ip, node: 'n1', pod: ip, local: true })
const build = (services: ServiceSpec[], endpoints: Record<string, Endpoint[]>, addrs: { 4?: string[], 6?: string[] } = {}): ServiceRuleset =>
  serviceRuleset({ services, endpoints: new Map(Object.entries(endpoints)), node: 'n1', nodeAddresses: addrs })

t.test('rules as nft text', async t => {
  const cases: Array<[Parameters<typeof ruleText>[0], string]> = [
    [{ kind: 'masqueradeFrom', family: 4, saddr: '10.244.1.3' }, 'ip saddr 10.244.1.3 jump mark-for-masquerade'],
    [{ kind: 'masqueradeFrom', family: 6, saddr: 'fd00::3' }, 'ip6 saddr fd00::3 jump mark-for-masquerade'],
    [{ kind: 'masquerade' }, 'jump mark-for-masquerade'],
    [{ kind: 'affinityUpdate', family: 6, set: 'aff-x' }, 'update @aff-x { ip6 saddr }'],
    [{ kind: 'affinityCheck', family: 4, set: 'aff-x', chain: 'ep-x' }, 'ip saddr @aff-x goto ep-x'],
    [{ kind: 'randomEndpoint', chains: ['ep-a', 'ep-b'] }, 'numgen random mod 2 vmap { 0 : goto ep-a, 1 : goto ep-b }'],
    [{ kind: 'dnat', family: 4, protocol: 'udp', ip: '10.244.1.3', port: 53 }, 'meta l4proto udp dnat ip to 10.244.1.3:53'],
    [{ kind: 'dnat', family: 6, protocol: 'sctp', ip: 'fd00::3', port: 9 }, 'meta l4proto sctp dnat ip6 to [fd00::3]:9'],
    [{ kind: 'goto', chain: 'svc-x' }, 'goto svc-x']
  ]
  for (const [rule, text] of cases) t.equal(ruleText(rule), text, rule.kind)
})

t.test('full sync: one transaction that recreates the table, declarations before rules, elements last', async t => {
  const r = build([web, { ...web, name: 'empty', clusterIPs: ['10.96.0.11'] }], { web: [ep('10.244.1.3')] }, { 4: ['192.0.2.1'] })
  const s = serviceChainName(web, p80, 4)
  const e = endpointChainName(web, p80, '10.244.1.3')
  const T = 'inet podmesh'
  t.strictSame(renderFullSync(r).split('\n'), [
    `add table ${T}`,
    `delete table ${T}`,
    `add table ${T}`,
    `add chain ${T} nat-prerouting { type nat hook prerouting priority -100; policy accept; }`,
    `add chain ${T} nat-output { type nat hook output priority -100; policy accept; }`,
    `add chain ${T} nat-postrouting { type nat hook postrouting priority 100; policy accept; }`,
    `add chain ${T} filter-input { type filter hook input priority -110; policy accept; }`,
    `add chain ${T} filter-forward { type filter hook forward priority -110; policy accept; }`,
    `add chain ${T} filter-output { type filter hook output priority -110; policy accept; }`,
    `add chain ${T} services`,
    `add chain ${T} masquerading`,
    `add chain ${T} mark-for-masquerade`,
    `add chain ${T} endpoint-check`,
    `add chain ${T} reject-no-endpoints`,
    `add set ${T} node-addresses-v4 { type ipv4_addr; elements = { 192.0.2.1 }; }`,
    `add map ${T} cluster-ips-v4 { type ipv4_addr . inet_proto . inet_service : verdict; }`,
    `add map ${T} cluster-ips-v6 { type ipv6_addr . inet_proto . inet_service : verdict; }`,
    `add map ${T} node-ports-v4 { type inet_proto . inet_service : verdict; }`,
    `add map ${T} node-ports-v6 { type inet_proto . inet_service : verdict; }`,
    `add map ${T} no-endpoints-v4 { type ipv4_addr . inet_proto . inet_service : verdict; }`,
    `add map ${T} no-endpoints-v6 { type ipv6_addr . inet_proto . inet_service : verdict; }`,
    `add map ${T} no-endpoint-node-ports-v4 { type inet_proto . inet_service : verdict; }`,
    `add map ${T} no-endpoint-node-ports-v6 { type inet_proto . inet_service : verdict; }`,
    `add chain ${T} ${e}`,
    `add chain ${T} ${s}`,
    `add rule ${T} nat-prerouting jump services`,
    `add rule ${T} nat-output jump services`,
    `add rule ${T} nat-postrouting jump masquerading`,
    `add rule ${T} filter-input jump endpoint-check`,
    `add rule ${T} filter-forward jump endpoint-check`,
    `add rule ${T} filter-output jump endpoint-check`,
    `add rule ${T} mark-for-masquerade meta mark set meta mark | 0x4000`,
    `add rule ${T} masquerading meta mark & 0x4000 == 0 return`,
    `add rule ${T} masquerading meta mark set meta mark ^ 0x4000`,
    `add rule ${T} masquerading masquerade fully-random`,
    `add rule ${T} reject-no-endpoints meta l4proto tcp reject with tcp reset`,
    `add rule ${T} reject-no-endpoints reject`,
    `add rule ${T} services ip daddr . meta l4proto . th dport vmap @cluster-ips-v4`,
    `add rule ${T} services ip daddr @node-addresses-v4 meta l4proto . th dport vmap @node-ports-v4`,
    `add rule ${T} endpoint-check ip daddr . meta l4proto . th dport vmap @no-endpoints-v4`,
    `add rule ${T} endpoint-check ip daddr @node-addresses-v4 meta l4proto . th dport vmap @no-endpoint-node-ports-v4`,
    `add rule ${T} services ip6 daddr . meta l4proto . th dport vmap @cluster-ips-v6`,
    `add rule ${T} services fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @node-ports-v6`,
    `add rule ${T} endpoint-check ip6 daddr . meta l4proto . th dport vmap @no-endpoints-v6`,
    `add rule ${T} endpoint-check fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @no-endpoint-node-ports-v6`,
    `add rule ${T} ${e} ip saddr 10.244.1.3 jump mark-for-masquerade`,
    `add rule ${T} ${e} meta l4proto tcp dnat ip to 10.244.1.3:8080`,
    `add rule ${T} ${s} numgen random mod 1 vmap { 0 : goto ${e} }`,
    `add element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 : goto ${s} }`,
    `add element ${T} no-endpoints-v4 { 10.96.0.11 . tcp . 80 : goto reject-no-endpoints }`,
    ''
  ])
})

t.test('every command of a full sync names table inet podmesh', async t => {
  const r = build([{ ...web, type: 'NodePort', sessionAffinity: 'ClientIP', ports: [{ ...p80, nodePort: 30080 }] }], { web: [ep('10.244.1.3'), ep('10.244.1.4')] })
  for (const line of renderFullSync(r).trim().split('\n')) t.match(line, /^(add|delete) (table|chain|rule|set|map|element) inet podmesh( |$)/)
  t.equal(renderRemoval(), 'add table inet podmesh\ndelete table inet podmesh\n')
})

t.test('partial updates from the diff of two rulesets', async t => {
  const three = { web: [ep('10.244.1.3'), ep('10.244.1.4'), ep('10.244.1.5')] }
  const two = { web: [ep('10.244.1.3'), ep('10.244.1.5')] }
  const s = serviceChainName(web, p80, 4)
  const e3 = endpointChainName(web, p80, '10.244.1.3')
  const e4 = endpointChainName(web, p80, '10.244.1.4')
  const e5 = endpointChainName(web, p80, '10.244.1.5')
  const T = 'inet podmesh'
  const cases: Array<{ name: string, from: ServiceRuleset, to: ServiceRuleset, script: string[] | 'full' }> = [
    { name: 'nothing changed: an empty script', from: build([web], three), to: build([web], three), script: [''] },
    {
      name: 'an endpoint goes: rewrite the service chain, then delete the endpoint chain',
      from: build([web], three),
      to: build([web], two),
      script: [
        `flush chain ${T} ${s}`,
        `flush chain ${T} ${e4}`,
        `add rule ${T} ${s} numgen random mod 2 vmap { 0 : goto ${e3}, 1 : goto ${e5} }`,
        `delete chain ${T} ${e4}`,
        ''
      ]
    },
    {
      name: 'an endpoint comes: its chain declared and filled before the service chain names it',
      from: build([web], two),
      to: build([web], three),
      script: [
        `add chain ${T} ${e4}`,
        `flush chain ${T} ${s}`,
        `add rule ${T} ${e4} ip saddr 10.244.1.4 jump mark-for-masquerade`,
        `add rule ${T} ${e4} meta l4proto tcp dnat ip to 10.244.1.4:8080`,
        `add rule ${T} ${s} numgen random mod 3 vmap { 0 : goto ${e3}, 1 : goto ${e4}, 2 : goto ${e5} }`,
        ''
      ]
    },
    {
      name: 'the last endpoint goes: the cluster IP moves from the nat map to the reject map, chains deleted after',
      from: build([web], { web: [ep('10.244.1.3')] }),
      to: build([web], {}),
      script: [
        `delete element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 }`,
        `flush chain ${T} ${e3}`,
        `flush chain ${T} ${s}`,
        `delete chain ${T} ${e3}`,
        `delete chain ${T} ${s}`,
        `add element ${T} no-endpoints-v4 { 10.96.0.10 . tcp . 80 : goto reject-no-endpoints }`,
        ''
      ]
    },
    {
      name: 'affinity: a new endpoint brings its set, a removed one takes its set after the chains',
      from: build([{ ...web, sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 30 }], { web: [ep('10.244.1.3'), ep('10.244.1.4')] }),
      to: build([{ ...web, sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 30 }], { web: [ep('10.244.1.3')] }),
      script: [
        `flush chain ${T} ${s}`,
        `flush chain ${T} ${e4}`,
        `add rule ${T} ${s} ip saddr @${affinitySetName(web, p80, '10.244.1.3', 30)} goto ${e3}`,
        `add rule ${T} ${s} numgen random mod 1 vmap { 0 : goto ${e3} }`,
        `delete chain ${T} ${e4}`,
        `delete set ${T} ${affinitySetName(web, p80, '10.244.1.4', 30)}`,
        ''
      ]
    },
    {
      name: 'NodePort Local loses its local endpoint: the NodePort element moves to the reject map',
      from: build([{ ...web, type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30080 }] }], { web: [ep('10.244.1.3')] }),
      to: build([{ ...web, type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30080 }] }], { web: [{ ...ep('10.244.1.3'), node: 'n2', local: false }] }),
      script: [
        `delete element ${T} node-ports-v4 { tcp . 30080 }`,
        `flush chain ${T} ${nodePortChainName(web, p80, 4)}`,
        `delete chain ${T} ${nodePortChainName(web, p80, 4)}`,
        `add element ${T} no-endpoint-node-ports-v4 { tcp . 30080 : goto reject-no-endpoints }`,
        ''
      ]
    },
    { name: 'the NodePort addresses change: a full sync', from: build([web], three, { 4: ['192.0.2.1'] }), to: build([web], three, { 4: ['192.0.2.2'] }), script: 'full' }
  ]
  for (const c of cases) {
    t.test(c.name, async t => {
      const d = diffRulesets(c.from, c.to)
      if (c.script === 'full') { t.equal(d, 'full'); return }
      t.not(d, 'full')
      t.strictSame(renderChange(d as RulesetChange).split('\n'), c.script)
      t.equal(isEmptyChange(d as RulesetChange), c.script.length === 1)
    })
  }
})

t.test('one endpoint change among 10,000 services is a handful of commands', async t => {
  const services: ServiceSpec[] = []
  const endpoints: Record<string, Endpoint[]> = {}
  for (let i = 0; i < 10_000; i++) {
    const name = `svc${i}`
    services.push({ ...web, name, clusterIPs: [`10.96.${i >> 8}.${i & 255}`] })
    endpoints[name] = [ep(`10.244.${i >> 8}.${i & 255}`), ep(`10.245.${i >> 8}.${i & 255}`)]
  }
  const from = build(services, endpoints)
  const to = build(services, { ...endpoints, svc42: [ep('10.244.0.42')] })
  const d = diffRulesets(from, to)
  t.not(d, 'full')
  t.equal(renderChange(d as RulesetChange).trim().split('\n').length, 4)
})

t.test('a chain whose rule differs in any one field is rewritten; the same rules are not', async t => {
  const rules: Array<[Parameters<typeof ruleText>[0], Parameters<typeof ruleText>[0]]> = [
    [{ kind: 'masqueradeFrom', family: 4, saddr: '10.244.1.3' }, { kind: 'masqueradeFrom', family: 4, saddr: '10.244.1.4' }],
    [{ kind: 'affinityUpdate', family: 4, set: 'aff-a' }, { kind: 'affinityUpdate', family: 4, set: 'aff-b' }],
    [{ kind: 'affinityCheck', family: 4, set: 'aff-a', chain: 'ep-a' }, { kind: 'affinityCheck', family: 4, set: 'aff-a', chain: 'ep-b' }],
    [{ kind: 'randomEndpoint', chains: ['ep-a', 'ep-b'] }, { kind: 'randomEndpoint', chains: ['ep-b', 'ep-a'] }],
    [{ kind: 'dnat', family: 4, protocol: 'tcp', ip: '10.244.1.3', port: 8080 }, { kind: 'dnat', family: 4, protocol: 'tcp', ip: '10.244.1.3', port: 8081 }],
    [{ kind: 'dnat', family: 4, protocol: 'tcp', ip: '10.244.1.3', port: 8080 }, { kind: 'dnat', family: 4, protocol: 'udp', ip: '10.244.1.3', port: 8080 }],
    [{ kind: 'goto', chain: 'svc-a' }, { kind: 'goto', chain: 'svc-b' }],
    [{ kind: 'masquerade' }, { kind: 'goto', chain: 'svc-a' }]
  ]
  const base = build([], {})
  for (const [a, b] of rules) {
    const from = { ...base, chains: { c: [a] } }
    t.strictSame(diffRulesets(from, { ...base, chains: { c: [b] } }), { addChains: {}, rewriteChains: { c: [b] }, deleteChains: [], addSets: {}, deleteSets: [], deleteElements: {}, addElements: {} }, `${a.kind} → ${b.kind}`)
    t.ok(isEmptyChange(diffRulesets(from, { ...base, chains: { c: [JSON.parse(JSON.stringify(a))] } }) as RulesetChange), `${a.kind} unchanged`)
  }
})

// The nft scripts for podmesh's service table: the full sync's exact text for a small ruleset,
// and partial updates computed from the diff of two rulesets (what an endpoint change touches).
import t from 'tap'
import { renderChange, renderFullSync, renderRemoval, ruleText } from '../../lib/dataplane/nft/render'
import { diffRulesets, emptyChange, isEmptyChange, type RulesetChange } from '../../lib/service/rules-diff'
import { affinitySetName, pickChainName, serviceChainName, type PickKind, type ServiceRuleset } from '../../lib/service/rules'
import { PRESET_PICK_COUNTS, serviceRuleset } from '../../lib/service/ruleset'
import type { Endpoint, ServicePort, ServiceSpec } from '../../lib/service/types'

const web: ServiceSpec = {
  v: 1, name: 'web', type: 'ClusterIP', clusterIPs: ['10.96.0.10'],
  ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector: { app: 'web' },
  sessionAffinity: 'None', externalTrafficPolicy: 'Cluster'
}
const p80 = web.ports[0] as ServicePort
const ep = (ip: string): Endpoint => ({ ip, node: 'n1', pod: ip, local: true })
/** The preset pick chains of one kind for TCP on IPv4, in name order (the order they are written in). */
const presets = (kind: PickKind): string[] => Array.from({ length: PRESET_PICK_COUNTS }, (_, i) => pickChainName(kind, 'tcp', 4, i + 1)).sort()
const many = (n: number): Endpoint[] => Array.from({ length: n }, (_, i) => ep(`10.244.9.${100 + i}`))
const build = (services: ServiceSpec[], endpoints: Record<string, Endpoint[]>, addrs: { 4?: string[], 6?: string[] } = {}): ServiceRuleset =>
  serviceRuleset({ services, endpoints: new Map(Object.entries(endpoints)), node: 'n1', nodeAddresses: addrs })

t.test('rules as nft text', async t => {
  const cases: Array<[Parameters<typeof ruleText>[0], string]> = [
    [{ kind: 'masquerade' }, 'jump mark-for-masquerade'],
    [{ kind: 'goto', chain: 'svc-x' }, 'goto svc-x'],
    [{ kind: 'pickEndpoint', family: 4, protocol: 'tcp', via: 'clusterIP', count: 3 }, 'dnat ip to ip daddr . tcp dport . numgen random mod 3 map @endpoints-tcp-v4'],
    [{ kind: 'pickEndpoint', family: 6, protocol: 'udp', via: 'nodePort', count: 1 }, 'dnat ip6 to udp dport . numgen random mod 1 map @node-port-endpoints-udp-v6'],
    [{ kind: 'affinityDnat', family: 4, set: 'aff-x', protocol: 'udp', ip: '10.244.1.3', port: 53 }, 'ip saddr @aff-x meta l4proto udp dnat ip to 10.244.1.3:53'],
    [{ kind: 'chooseDnat', family: 6, among: 2, set: 'aff-x', protocol: 'sctp', ip: 'fd00::3', port: 9 }, 'meta l4proto sctp numgen random mod 2 0 update @aff-x { ip6 saddr } dnat ip6 to [fd00::3]:9'],
    [{ kind: 'chooseDnat', family: 4, among: 1, set: 'aff-x', protocol: 'tcp', ip: '10.244.1.3', port: 8080 }, 'meta l4proto tcp update @aff-x { ip saddr } dnat ip to 10.244.1.3:8080']
  ]
  for (const [rule, text] of cases) t.equal(ruleText(rule), text, rule.kind)
})

t.test('full sync: one transaction that recreates the table, declarations before rules, elements last', async t => {
  const r = build([web, { ...web, name: 'empty', clusterIPs: ['10.96.0.11'] }], { web: [ep('10.244.1.3')] }, { 4: ['192.0.2.1'] })
  const T = 'inet podmesh'
  const picks = presets('cluster-ip')
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
    ...(['tcp', 'udp', 'sctp'] as const).flatMap(p => [
      `add map ${T} endpoints-${p}-v4 { typeof ip daddr . ${p} dport . numgen random mod 1 : ip daddr . ${p} dport; }`,
      `add map ${T} endpoints-${p}-v6 { typeof ip6 daddr . ${p} dport . numgen random mod 1 : ip6 daddr . ${p} dport; }`
    ]),
    ...(['tcp', 'udp', 'sctp'] as const).flatMap(p => [
      `add map ${T} node-port-endpoints-${p}-v4 { typeof ${p} dport . numgen random mod 1 : ip daddr . ${p} dport; }`,
      `add map ${T} node-port-endpoints-${p}-v6 { typeof ${p} dport . numgen random mod 1 : ip6 daddr . ${p} dport; }`
    ]),
    `add set ${T} hairpin-v4 { type ipv4_addr . ipv4_addr; }`,
    `add set ${T} hairpin-v6 { type ipv6_addr . ipv6_addr; }`,
    ...picks.map(c => `add chain ${T} ${c}`),
    `add rule ${T} nat-prerouting jump services`,
    `add rule ${T} nat-output jump services`,
    `add rule ${T} nat-postrouting jump masquerading`,
    `add rule ${T} filter-input jump endpoint-check`,
    `add rule ${T} filter-forward jump endpoint-check`,
    `add rule ${T} filter-output jump endpoint-check`,
    `add rule ${T} mark-for-masquerade meta mark set meta mark | 0x4000`,
    `add rule ${T} masquerading ct status dnat ip saddr . ip daddr @hairpin-v4 jump mark-for-masquerade`,
    `add rule ${T} masquerading ct status dnat ip6 saddr . ip6 daddr @hairpin-v6 jump mark-for-masquerade`,
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
    ...picks.map(c => `add rule ${T} ${c} dnat ip to ip daddr . tcp dport . numgen random mod ${c.split('-')[2] as string} map @endpoints-tcp-v4`),
    `add element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 : goto pick-tcp-1-v4 }`,
    `add element ${T} no-endpoints-v4 { 10.96.0.11 . tcp . 80 : goto reject-no-endpoints }`,
    `add element ${T} endpoints-tcp-v4 { 10.96.0.10 . 80 . 0 : 10.244.1.3 . 8080 }`,
    `add element ${T} hairpin-v4 { 10.244.1.3 . 10.244.1.3 }`,
    ''
  ])
})

t.test('every command of a full sync names table inet podmesh', async t => {
  const np = { ...web, type: 'NodePort' as const, clusterIPs: ['10.96.0.10', 'fd00:96::10'], ports: [{ ...p80, nodePort: 30080 }] }
  const r = build([
    { ...np, sessionAffinity: 'ClientIP' },
    { ...np, name: 'local', clusterIPs: ['10.96.0.11', 'fd00:96::11'], externalTrafficPolicy: 'Local', ports: [{ ...p80, nodePort: 30081 }] }
  ], { web: [ep('10.244.1.3'), ep('10.244.1.4'), ep('fd00:244:1::3')], local: [ep('10.244.1.3'), ep('fd00:244:1::3')] })
  for (const line of renderFullSync(r).trim().split('\n')) t.match(line, /^(add|delete) (table|chain|rule|set|map|element) inet podmesh( |$)/)
  t.equal(renderRemoval(), 'add table inet podmesh\ndelete table inet podmesh\n')
})

t.test('partial updates from the diff of two rulesets', async t => {
  const three = { web: [ep('10.244.1.3'), ep('10.244.1.4'), ep('10.244.1.5')] }
  const two = { web: [ep('10.244.1.3'), ep('10.244.1.5')] }
  const T = 'inet podmesh'
  const sticky = { ...web, sessionAffinity: 'ClientIP' as const, affinityTimeoutSeconds: 30 }
  const aff = (ip: string): string => affinitySetName(web, p80, ip, 30)
  const s = serviceChainName(web, p80, 4)
  const local = { ...web, type: 'NodePort' as const, externalTrafficPolicy: 'Local' as const, ports: [{ ...p80, nodePort: 30080 }] }
  const cases: Array<{ name: string, from: ServiceRuleset, to: ServiceRuleset, script: string[] | 'full' }> = [
    { name: 'nothing changed: an empty script', from: build([web], three), to: build([web], three), script: [''] },
    {
      name: 'an endpoint replaced by another: slots and hairpin pairs only, no chain, no rule',
      from: build([web], three),
      to: build([web], { web: [ep('10.244.1.3'), ep('10.244.1.5'), ep('10.244.1.6')] }),
      script: [
        `delete element ${T} endpoints-tcp-v4 { 10.96.0.10 . 80 . 1, 10.96.0.10 . 80 . 2 }`,
        `delete element ${T} hairpin-v4 { 10.244.1.4 . 10.244.1.4 }`,
        `add element ${T} endpoints-tcp-v4 { 10.96.0.10 . 80 . 1 : 10.244.1.5 . 8080, 10.96.0.10 . 80 . 2 : 10.244.1.6 . 8080 }`,
        `add element ${T} hairpin-v4 { 10.244.1.6 . 10.244.1.6 }`,
        ''
      ]
    },
    {
      name: 'an endpoint goes: the element moves to the (preset) pick chain of two, the last slot goes; no chain changes',
      from: build([web], three),
      to: build([web], two),
      script: [
        `delete element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 }`,
        `delete element ${T} endpoints-tcp-v4 { 10.96.0.10 . 80 . 1, 10.96.0.10 . 80 . 2 }`,
        `delete element ${T} hairpin-v4 { 10.244.1.4 . 10.244.1.4 }`,
        `add element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 : goto pick-tcp-2-v4 }`,
        `add element ${T} endpoints-tcp-v4 { 10.96.0.10 . 80 . 1 : 10.244.1.5 . 8080 }`,
        ''
      ]
    },
    {
      name: 'past the preset counts: the pick chain is declared and filled before the element goes to it, and deleted after',
      from: build([web], { web: many(PRESET_PICK_COUNTS) }),
      to: build([web], { web: many(PRESET_PICK_COUNTS + 1) }),
      script: [
        `add chain ${T} pick-tcp-${PRESET_PICK_COUNTS + 1}-v4`,
        `delete element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 }`,
        `add rule ${T} pick-tcp-${PRESET_PICK_COUNTS + 1}-v4 dnat ip to ip daddr . tcp dport . numgen random mod ${PRESET_PICK_COUNTS + 1} map @endpoints-tcp-v4`,
        `add element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 : goto pick-tcp-${PRESET_PICK_COUNTS + 1}-v4 }`,
        `add element ${T} endpoints-tcp-v4 { 10.96.0.10 . 80 . ${PRESET_PICK_COUNTS} : 10.244.9.${100 + PRESET_PICK_COUNTS} . 8080 }`,
        `add element ${T} hairpin-v4 { 10.244.9.${100 + PRESET_PICK_COUNTS} . 10.244.9.${100 + PRESET_PICK_COUNTS} }`,
        ''
      ]
    },
    {
      name: 'the last endpoint goes: the cluster IP moves from the nat map to the reject map, the pick chains deleted after',
      from: build([web], { web: [ep('10.244.1.3')] }),
      to: build([web], {}),
      script: [
        `delete element ${T} cluster-ips-v4 { 10.96.0.10 . tcp . 80 }`,
        `delete element ${T} endpoints-tcp-v4 { 10.96.0.10 . 80 . 0 }`,
        `delete element ${T} hairpin-v4 { 10.244.1.3 . 10.244.1.3 }`,
        // The last service with TCP endpoints on IPv4 is gone: so are the preset pick chains.
        ...presets('cluster-ip').map(c => `flush chain ${T} ${c}`),
        ...presets('cluster-ip').map(c => `delete chain ${T} ${c}`),
        `add element ${T} no-endpoints-v4 { 10.96.0.10 . tcp . 80 : goto reject-no-endpoints }`,
        ''
      ]
    },
    {
      name: 'affinity: the service chain rewritten, the removed endpoint\'s set deleted after it',
      from: build([sticky], { web: [ep('10.244.1.3'), ep('10.244.1.4')] }),
      to: build([sticky], { web: [ep('10.244.1.3')] }),
      script: [
        `delete element ${T} hairpin-v4 { 10.244.1.4 . 10.244.1.4 }`,
        `flush chain ${T} ${s}`,
        `add rule ${T} ${s} ip saddr @${aff('10.244.1.3')} meta l4proto tcp dnat ip to 10.244.1.3:8080`,
        `add rule ${T} ${s} meta l4proto tcp update @${aff('10.244.1.3')} { ip saddr } dnat ip to 10.244.1.3:8080`,
        `delete set ${T} ${aff('10.244.1.4')}`,
        ''
      ]
    },
    {
      name: 'affinity: a new endpoint brings its set before the rules that name it',
      from: build([sticky], { web: [ep('10.244.1.3')] }),
      to: build([sticky], { web: [ep('10.244.1.3'), ep('10.244.1.4')] }),
      script: [
        `add set ${T} ${aff('10.244.1.4')} { type ipv4_addr; flags dynamic,timeout; timeout 30s; }`,
        `flush chain ${T} ${s}`,
        `add rule ${T} ${s} ip saddr @${aff('10.244.1.3')} meta l4proto tcp dnat ip to 10.244.1.3:8080`,
        `add rule ${T} ${s} ip saddr @${aff('10.244.1.4')} meta l4proto tcp dnat ip to 10.244.1.4:8080`,
        `add rule ${T} ${s} meta l4proto tcp numgen random mod 2 0 update @${aff('10.244.1.3')} { ip saddr } dnat ip to 10.244.1.3:8080`,
        `add rule ${T} ${s} meta l4proto tcp update @${aff('10.244.1.4')} { ip saddr } dnat ip to 10.244.1.4:8080`,
        `add element ${T} hairpin-v4 { 10.244.1.4 . 10.244.1.4 }`,
        ''
      ]
    },
    {
      name: 'NodePort Local loses its local endpoint: the NodePort element moves to the reject map',
      from: build([local], { web: [ep('10.244.1.3')] }),
      to: build([local], { web: [{ ...ep('10.244.1.3'), node: 'n2', local: false }] }),
      script: [
        `delete element ${T} node-ports-v4 { tcp . 30080 }`,
        `delete element ${T} node-port-endpoints-tcp-v4 { 30080 . 0 }`,
        `delete element ${T} hairpin-v4 { 10.244.1.3 . 10.244.1.3 }`,
        ...presets('node-port').map(c => `flush chain ${T} ${c}`),
        ...presets('node-port').map(c => `delete chain ${T} ${c}`),
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

t.test('one endpoint replaced among 10,000 services is four element commands, no rule and no chain', async t => {
  const services: ServiceSpec[] = []
  const endpoints: Record<string, Endpoint[]> = {}
  for (let i = 0; i < 10_000; i++) {
    const name = `svc${i}`
    services.push({ ...web, name, clusterIPs: [`10.96.${i >> 8}.${i & 255}`] })
    endpoints[name] = [ep(`10.244.${i >> 8}.${i & 255}`), ep(`10.245.${i >> 8}.${i & 255}`)]
  }
  const from = build(services, endpoints)
  const to = build(services, { ...endpoints, svc42: [ep('10.244.0.42'), ep('10.246.0.42')] })
  const d = diffRulesets(from, to)
  t.not(d, 'full')
  const lines = renderChange(d as RulesetChange).trim().split('\n')
  t.strictSame(lines.map(l => l.split(' ').slice(0, 5).join(' ')), [
    'delete element inet podmesh endpoints-tcp-v4',
    'delete element inet podmesh hairpin-v4',
    'add element inet podmesh endpoints-tcp-v4',
    'add element inet podmesh hairpin-v4'
  ])
})

t.test('a chain whose rule differs in any one field is rewritten; the same rules are not', async t => {
  const dnat = { kind: 'affinityDnat', family: 4, set: 'aff-a', protocol: 'tcp', ip: '10.244.1.3', port: 8080 } as const
  const choose = { kind: 'chooseDnat', family: 4, among: 2, set: 'aff-a', protocol: 'tcp', ip: '10.244.1.3', port: 8080 } as const
  const pick = { kind: 'pickEndpoint', family: 4, protocol: 'tcp', via: 'clusterIP', count: 2 } as const
  const rules: Array<[Parameters<typeof ruleText>[0], Parameters<typeof ruleText>[0]]> = [
    [pick, { ...pick, count: 3 }],
    [pick, { ...pick, via: 'nodePort' }],
    [pick, { ...pick, family: 6 }],
    [pick, { ...pick, protocol: 'udp' }],
    [dnat, { ...dnat, set: 'aff-b' }],
    [dnat, { ...dnat, ip: '10.244.1.4' }],
    [dnat, { ...dnat, port: 8081 }],
    [dnat, { ...dnat, protocol: 'udp' }],
    [choose, { ...choose, among: 1 }],
    [choose, { ...choose, set: 'aff-b' }],
    [{ kind: 'goto', chain: 'svc-a' }, { kind: 'goto', chain: 'svc-b' }],
    [{ kind: 'masquerade' }, { kind: 'goto', chain: 'svc-a' }]
  ]
  const base = build([], {})
  for (const [a, b] of rules) {
    const from = { ...base, chains: { c: [a] } }
    t.strictSame(diffRulesets(from, { ...base, chains: { c: [b] } }), { ...emptyChange(), rewriteChains: { c: [b] } }, `${a.kind} → ${JSON.stringify(b)}`)
    t.ok(isEmptyChange(diffRulesets(from, { ...base, chains: { c: [JSON.parse(JSON.stringify(a))] } }) as RulesetChange), `${a.kind} unchanged`)
  }
})

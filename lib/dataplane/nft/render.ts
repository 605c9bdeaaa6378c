// Writes podmesh's service ruleset (lib/service/rules) as an `nft -f` script: the whole table
// (full sync) or only what a diff of two rulesets names (partial update). Pure text; apply.ts
// runs it. Every command names `inet podmesh`, so a script can never touch another table.
//
// Layout of the table (docs/services.md, "The nftables table"):
//   nat-prerouting / nat-output (dstnat) → services: cluster-ips-vN and node-ports-vN verdict maps
//     → pick-<protocol>-<n>-vN: DNAT through the endpoints-<protocol>-vN data map (a ClientIP
//       service: its own chain)
//   nat-postrouting (srcnat) → masquerading: hairpin pairs, then SNAT what mark-for-masquerade marked
//   filter-input / filter-forward / filter-output → endpoint-check: no-endpoints-vN maps → reject
//
// A partial update uses only commands for which nft 1.0.6 reads a small part of the kernel's
// table before it applies them: `add element`, `delete element` and `add rule` make it list every
// chain and set of the table (cheap while services have no chains of their own), `flush chain` and
// `add chain` list only the tables.

import {
  ENDPOINT_MAP_NAMES, MAP_NAMES, SERVICE_TABLE, endpointMapName, endpointMapProtocol, mapKeyed, rulesetTable,
  type AffinitySet, type EndpointElement, type EndpointMapName, type EndpointSlots, type Family, type MapElement, type MapName,
  type Rule, type RulesetFrame, type ServiceRuleset
} from '../../service/rules'
import type { RulesetChange } from '../../service/rules-diff'

const T = `${SERVICE_TABLE.family} ${SERVICE_TABLE.name}`

const addr = (f: Family): string => (f === 4 ? 'ip' : 'ip6')
const addrType = (f: Family): string => (f === 4 ? 'ipv4_addr' : 'ipv6_addr')
const hex = (n: number): string => `0x${n.toString(16)}`

/** Base chains: nat before conntrack's DNAT priority -100 is kube-proxy's choice too; filter just before nat. */
const BASE_CHAINS: ReadonlyArray<[string, string]> = [
  ['nat-prerouting', 'type nat hook prerouting priority -100; policy accept;'],
  ['nat-output', 'type nat hook output priority -100; policy accept;'],
  ['nat-postrouting', 'type nat hook postrouting priority 100; policy accept;'],
  ['filter-input', 'type filter hook input priority -110; policy accept;'],
  ['filter-forward', 'type filter hook forward priority -110; policy accept;'],
  ['filter-output', 'type filter hook output priority -110; policy accept;']
]
const HELPER_CHAINS = ['services', 'masquerading', 'mark-for-masquerade', 'endpoint-check', 'reject-no-endpoints']

/** A NodePort matches packets to these addresses (a set), or to any local address but loopback. */
function nodePortMatch (frame: RulesetFrame, f: Family): string {
  if (frame.nodePortAddresses[f].length > 0) return `${addr(f)} daddr @node-addresses-v${f}`
  return `fib daddr type local ${addr(f)} daddr != ${f === 4 ? '127.0.0.0/8' : '::1'}`
}

function frameRules (frame: RulesetFrame): string[] {
  const m = hex(frame.masqueradeMark)
  const rules: Array<[string, string]> = [
    ['nat-prerouting', 'jump services'],
    ['nat-output', 'jump services'],
    ['nat-postrouting', 'jump masquerading'],
    ['filter-input', 'jump endpoint-check'],
    ['filter-forward', 'jump endpoint-check'],
    ['filter-output', 'jump endpoint-check'],
    ['mark-for-masquerade', `meta mark set meta mark | ${m}`],
    // Hairpin: a pod DNATed to itself (source and destination the same local endpoint) is
    // masqueraded, or its own reply would never come back through the node.
    ['masquerading', 'ct status dnat ip saddr . ip daddr @hairpin-v4 jump mark-for-masquerade'],
    ['masquerading', 'ct status dnat ip6 saddr . ip6 daddr @hairpin-v6 jump mark-for-masquerade'],
    ['masquerading', `meta mark & ${m} == 0 return`],
    ['masquerading', `meta mark set meta mark ^ ${m}`],
    ['masquerading', 'masquerade fully-random'],
    ['reject-no-endpoints', 'meta l4proto tcp reject with tcp reset'],
    ['reject-no-endpoints', 'reject']
  ]
  for (const f of [4, 6] as const) {
    rules.push(['services', `${addr(f)} daddr . meta l4proto . th dport vmap @cluster-ips-v${f}`])
    rules.push(['services', `${nodePortMatch(frame, f)} meta l4proto . th dport vmap @node-ports-v${f}`])
    rules.push(['endpoint-check', `${addr(f)} daddr . meta l4proto . th dport vmap @no-endpoints-v${f}`])
    rules.push(['endpoint-check', `${nodePortMatch(frame, f)} meta l4proto . th dport vmap @no-endpoint-node-ports-v${f}`])
  }
  return rules.map(([chain, rule]) => `add rule ${T} ${chain} ${rule}`)
}

function mapDeclaration (name: MapName): string {
  const k = mapKeyed(name)
  const key = k.byAddress ? `${addrType(k.family)} . inet_proto . inet_service` : 'inet_proto . inet_service'
  return `add map ${T} ${name} { type ${key} : verdict; }`
}

// `typeof` because a slot is what `numgen` yields, which no named type is. A map per protocol,
// declared with that protocol's port: nft adds `meta l4proto <protocol>` to a rule that DNATs to
// a port from a map declared with `tcp dport` (so one map for all would serve TCP only), and the
// generic `th dport` cannot be used: nft 1.0.6 cannot add a rule that reads a map whose
// declaration it got back from the kernel with `th` in it ("conflicting protocols specified").
function endpointMapDeclaration (name: EndpointMapName): string {
  const k = mapKeyed(name)
  const a = addr(k.family)
  const port = `${endpointMapProtocol(name)} dport`
  return `add map ${T} ${name} { typeof ${k.byAddress ? `${a} daddr . ` : ''}${port} . numgen random mod 1 : ${a} daddr . ${port}; }`
}

const hairpinDeclaration = (f: Family): string => `add set ${T} hairpin-v${f} { type ${addrType(f)} . ${addrType(f)}; }`

const setDeclaration = (name: string, s: AffinitySet): string =>
  `add set ${T} ${name} { type ${addrType(s.family)}; flags dynamic,timeout; timeout ${s.timeoutSeconds}s; }`

const hostPort = (f: Family, ip: string, port: number): string => (f === 4 ? `${ip}:${port}` : `[${ip}]:${port}`)

/** One rule of the model as nft text. */
export function ruleText (r: Rule): string {
  switch (r.kind) {
    case 'masquerade': return 'jump mark-for-masquerade'
    case 'goto': return `goto ${r.chain}`
    case 'pickEndpoint': {
      const a = addr(r.family)
      const key = `${r.via === 'clusterIP' ? `${a} daddr . ` : ''}${r.protocol} dport`
      return `dnat ${a} to ${key} . numgen random mod ${r.count} map @${endpointMapName(r.via, r.protocol, r.family)}`
    }
    case 'affinityDnat': return `${addr(r.family)} saddr @${r.set} meta l4proto ${r.protocol} dnat ${addr(r.family)} to ${hostPort(r.family, r.ip, r.port)}`
    case 'chooseDnat': {
      const chance = r.among > 1 ? `numgen random mod ${r.among} 0 ` : ''
      return `meta l4proto ${r.protocol} ${chance}update @${r.set} { ${addr(r.family)} saddr } dnat ${addr(r.family)} to ${hostPort(r.family, r.ip, r.port)}`
    }
  }
}

function elementText (e: MapElement, withVerdict: boolean): string {
  const key = `${e.ip !== undefined ? `${e.ip} . ` : ''}${e.protocol} . ${e.port}`
  if (!withVerdict) return key
  return `${key} : goto ${e.verdict === 'reject' ? 'reject-no-endpoints' : e.verdict.goto}`
}

// The protocol is the map's.
function endpointText (e: EndpointElement, withData: boolean): string {
  const key = `${e.ip !== undefined ? `${e.ip} . ` : ''}${e.port} . ${e.slot}`
  return withData ? `${key} : ${e.endpoint} . ${e.targetPort}` : key
}

/** Every slot of a service address, as `add element` text. */
function slotsText (s: EndpointSlots): string {
  const key = `${s.ip !== undefined ? `${s.ip} . ` : ''}${s.port}`
  return s.endpoints.map((ip, slot) => `${key} . ${slot} : ${ip} . ${s.targetPort}`).join(', ')
}

const hairpinText = (ip: string): string => `${ip} . ${ip}`

/** One command per map or set (thousands of commands would cost the parser more). */
function elementCommands<M extends string, E> (verb: 'add' | 'delete', names: readonly M[], byName: Partial<Record<M, readonly E[]>>, text: (e: E, withData: boolean) => string): string[] {
  const out: string[] = []
  for (const name of names) {
    const es = byName[name]
    if (es === undefined || es.length === 0) continue
    out.push(`${verb} element ${T} ${name} { ${es.map(e => text(e, verb === 'add')).join(', ')} }`)
  }
  return out
}

function hairpinCommands (verb: 'add' | 'delete', byFamily: Partial<Record<Family, readonly string[]>>): string[] {
  const sets = { 'hairpin-v4': byFamily[4], 'hairpin-v6': byFamily[6] }
  return elementCommands(verb, ['hairpin-v4', 'hairpin-v6'] as const, sets, hairpinText)
}

const chainRules = (name: string, rules: readonly Rule[]): string[] => rules.map(r => `add rule ${T} ${name} ${ruleText(r)}`)

/**
 * The whole table in one transaction: create it if missing, delete it, build it again. Deleting
 * rather than flushing drops chains and sets that are no longer wanted; the kernel applies the
 * script atomically, so packets see the old table or the new one, never none.
 */
export function renderFullSync (m: ServiceRuleset): string {
  const t = rulesetTable(m)
  const lines: string[] = [`add table ${T}`, `delete table ${T}`, `add table ${T}`]
  for (const [name, spec] of BASE_CHAINS) lines.push(`add chain ${T} ${name} { ${spec} }`)
  for (const name of HELPER_CHAINS) lines.push(`add chain ${T} ${name}`)
  for (const f of [4, 6] as const) {
    const addrs = m.frame.nodePortAddresses[f]
    if (addrs.length > 0) lines.push(`add set ${T} node-addresses-v${f} { type ${addrType(f)}; elements = { ${addrs.join(', ')} }; }`)
  }
  for (const name of MAP_NAMES) lines.push(mapDeclaration(name))
  for (const name of ENDPOINT_MAP_NAMES) lines.push(endpointMapDeclaration(name))
  for (const f of [4, 6] as const) lines.push(hairpinDeclaration(f))
  for (const [name, s] of Object.entries(t.sets)) lines.push(setDeclaration(name, s))
  // Declare every chain before any rule, so that a rule may name a chain written after it.
  for (const name of Object.keys(t.chains)) lines.push(`add chain ${T} ${name}`)
  lines.push(...frameRules(m.frame))
  for (const [name, rules] of Object.entries(t.chains)) lines.push(...chainRules(name, rules))
  lines.push(...elementCommands('add', MAP_NAMES, t.maps, elementText))
  for (const map of ENDPOINT_MAP_NAMES) {
    const slots = t.endpoints[map]
    if (slots.length > 0) lines.push(`add element ${T} ${map} { ${slots.map(slotsText).join(', ')} }`)
  }
  lines.push(...hairpinCommands('add', m.hairpin))
  return lines.join('\n') + '\n'
}

/**
 * Only what changed, in an order the kernel accepts within one transaction: new objects first,
 * elements and rules that point at doomed chains gone before those chains, new elements last.
 * Dynamic affinity sets that stay keep their clients.
 */
export function renderChange (c: RulesetChange): string {
  const lines: string[] = []
  for (const [name, s] of Object.entries(c.addSets)) lines.push(setDeclaration(name, s))
  for (const name of Object.keys(c.addChains)) lines.push(`add chain ${T} ${name}`)
  lines.push(...elementCommands('delete', MAP_NAMES, c.deleteElements, elementText))
  lines.push(...elementCommands('delete', ENDPOINT_MAP_NAMES, c.deleteEndpoints, endpointText))
  lines.push(...hairpinCommands('delete', c.deleteHairpin))
  for (const name of [...Object.keys(c.rewriteChains), ...c.deleteChains]) lines.push(`flush chain ${T} ${name}`)
  for (const [name, rules] of [...Object.entries(c.addChains), ...Object.entries(c.rewriteChains)]) lines.push(...chainRules(name, rules))
  for (const name of c.deleteChains) lines.push(`delete chain ${T} ${name}`)
  for (const name of c.deleteSets) lines.push(`delete set ${T} ${name}`)
  lines.push(...elementCommands('add', MAP_NAMES, c.addElements, elementText))
  lines.push(...elementCommands('add', ENDPOINT_MAP_NAMES, c.addEndpoints, endpointText))
  lines.push(...hairpinCommands('add', c.addHairpin))
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

/** `delete table` for `--leave`, preceded by `add table` so that an absent table is no error. */
export const renderRemoval = (): string => `add table ${T}\ndelete table ${T}\n`

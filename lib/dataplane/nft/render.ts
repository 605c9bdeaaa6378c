// Writes podmesh's service ruleset (lib/service/rules) as an `nft -f` script: the whole table
// (full sync) or only what a diff of two rulesets names (partial update). Pure text; apply.ts
// runs it. Every command names `inet podmesh`, so a script can never touch another table.
//
// Layout of the table (docs/services.md, "The nftables table"):
//   nat-prerouting / nat-output (dstnat) → services: cluster-ips-vN and node-ports-vN verdict maps
//   nat-postrouting (srcnat) → masquerading: SNAT what mark-for-masquerade marked
//   filter-input / filter-forward / filter-output → endpoint-check: no-endpoints-vN maps → reject

import {
  MAP_NAMES, SERVICE_TABLE, mapKeyed, type AffinitySet, type Family, type MapElement, type MapName,
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

const setDeclaration = (name: string, s: AffinitySet): string =>
  `add set ${T} ${name} { type ${addrType(s.family)}; flags dynamic,timeout; timeout ${s.timeoutSeconds}s; }`

const hostPort = (f: Family, ip: string, port: number): string => (f === 4 ? `${ip}:${port}` : `[${ip}]:${port}`)

/** One rule of the model as nft text. */
export function ruleText (r: Rule): string {
  switch (r.kind) {
    case 'masqueradeFrom': return `${addr(r.family)} saddr ${r.saddr} jump mark-for-masquerade`
    case 'masquerade': return 'jump mark-for-masquerade'
    case 'affinityUpdate': return `update @${r.set} { ${addr(r.family)} saddr }`
    case 'affinityCheck': return `${addr(r.family)} saddr @${r.set} goto ${r.chain}`
    case 'randomEndpoint': return `numgen random mod ${r.chains.length} vmap { ${r.chains.map((c, i) => `${i} : goto ${c}`).join(', ')} }`
    case 'dnat': return `meta l4proto ${r.protocol} dnat ${addr(r.family)} to ${hostPort(r.family, r.ip, r.port)}`
    case 'goto': return `goto ${r.chain}`
  }
}

function elementText (e: MapElement, withVerdict: boolean): string {
  const key = `${e.ip !== undefined ? `${e.ip} . ` : ''}${e.protocol} . ${e.port}`
  if (!withVerdict) return key
  return `${key} : goto ${e.verdict === 'reject' ? 'reject-no-endpoints' : e.verdict.goto}`
}

/** Elements in key order, one command per map (thousands of commands would cost the parser more). */
function elementCommands (verb: 'add' | 'delete', byMap: Partial<Record<MapName, readonly MapElement[]>>): string[] {
  const out: string[] = []
  for (const map of MAP_NAMES) {
    const es = byMap[map]
    if (es === undefined || es.length === 0) continue
    out.push(`${verb} element ${T} ${map} { ${es.map(e => elementText(e, verb === 'add')).join(', ')} }`)
  }
  return out
}

const chainRules = (name: string, rules: readonly Rule[]): string[] => rules.map(r => `add rule ${T} ${name} ${ruleText(r)}`)

/**
 * The whole table in one transaction: create it if missing, delete it, build it again. Deleting
 * rather than flushing drops chains and sets that are no longer wanted; the kernel applies the
 * script atomically, so packets see the old table or the new one, never none.
 */
export function renderFullSync (m: ServiceRuleset): string {
  const lines: string[] = [`add table ${T}`, `delete table ${T}`, `add table ${T}`]
  for (const [name, spec] of BASE_CHAINS) lines.push(`add chain ${T} ${name} { ${spec} }`)
  for (const name of HELPER_CHAINS) lines.push(`add chain ${T} ${name}`)
  for (const f of [4, 6] as const) {
    const addrs = m.frame.nodePortAddresses[f]
    if (addrs.length > 0) lines.push(`add set ${T} node-addresses-v${f} { type ${addrType(f)}; elements = { ${addrs.join(', ')} }; }`)
  }
  for (const name of MAP_NAMES) lines.push(mapDeclaration(name))
  for (const [name, s] of Object.entries(m.sets)) lines.push(setDeclaration(name, s))
  // Declare every chain before any rule, so that a rule may name a chain written after it.
  for (const name of Object.keys(m.chains)) lines.push(`add chain ${T} ${name}`)
  lines.push(...frameRules(m.frame))
  for (const [name, rules] of Object.entries(m.chains)) lines.push(...chainRules(name, rules))
  lines.push(...elementCommands('add', Object.fromEntries(MAP_NAMES.map(n => [n, Object.values(m.maps[n])]))))
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
  lines.push(...elementCommands('delete', c.deleteElements))
  for (const name of [...Object.keys(c.rewriteChains), ...c.deleteChains]) lines.push(`flush chain ${T} ${name}`)
  for (const [name, rules] of [...Object.entries(c.addChains), ...Object.entries(c.rewriteChains)]) lines.push(...chainRules(name, rules))
  for (const name of c.deleteChains) lines.push(`delete chain ${T} ${name}`)
  for (const name of c.deleteSets) lines.push(`delete set ${T} ${name}`)
  lines.push(...elementCommands('add', c.addElements))
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

/** `delete table` for `--leave`, preceded by `add table` so that an absent table is no error. */
export const renderRemoval = (): string => `add table ${T}\ndelete table ${T}\n`

// What `podmeshctl diff` compares of the service table (issue #11): the chains of services and
// endpoints with their number of rules, the affinity sets, and every dispatch map's elements
// with the chain each sends to. Built from the ruleset podmeshd would apply, and from the
// kernel's table (lib/dataplane/nft/table-read.ts), so that a stale element, a chain gone or
// grown, or a set missing shows as one line each. The fixed frame (base chains, their rules) is
// not compared rule by rule: a full sync writes it whole, and its absence shows as a missing table.
import { MAP_NAMES, type MapElement, type ServiceRuleset } from './rules'

export interface TableSummary {
  /** Chain name → number of rules (service, NodePort and endpoint chains). */
  chains: ReadonlyMap<string, number>
  sets: ReadonlySet<string>
  /** Map name → element key ("10.96.0.10 . tcp . 80", "tcp . 30080") → the chain it goes to. */
  elements: ReadonlyMap<string, ReadonlyMap<string, string>>
}

/** The chain a packet to a service without endpoints goes to (render.ts names it so). */
export const REJECT_CHAIN = 'reject-no-endpoints'

export const elementKey = (e: Pick<MapElement, 'ip' | 'protocol' | 'port'>): string =>
  `${e.ip !== undefined ? `${e.ip} . ` : ''}${e.protocol} . ${e.port}`

export function rulesetSummary (r: ServiceRuleset): TableSummary {
  const elements = new Map<string, Map<string, string>>()
  for (const name of MAP_NAMES) {
    elements.set(name, new Map(Object.values(r.maps[name]).map(e => [elementKey(e), e.verdict === 'reject' ? REJECT_CHAIN : e.verdict.goto])))
  }
  return {
    chains: new Map(Object.entries(r.chains).map(([name, rules]) => [name, rules.length])),
    sets: new Set(Object.keys(r.sets)),
    elements
  }
}

/** Chains of services, NodePorts and endpoints (rules.ts names them so); the frame's are not. */
const isModelChain = (name: string): boolean => /^(svc|ext|ep)-/.test(name)

/**
 * One line per difference between what should be (`want`) and what is (`have`); empty when the
 * same. `have` may hold the frame's chains and NodePort address sets: they are not extra.
 */
export function compareTables (want: TableSummary, have: TableSummary): string[] {
  const out: string[] = []
  for (const [name, rules] of want.chains) {
    const n = have.chains.get(name)
    if (n === undefined) out.push(`service chain ${name} missing`)
    else if (n !== rules) out.push(`service chain ${name} has ${n} rules, want ${rules}`)
  }
  for (const name of have.chains.keys()) if (!want.chains.has(name) && isModelChain(name)) out.push(`service chain ${name} not wanted`)
  for (const name of want.sets) if (!have.sets.has(name)) out.push(`service set ${name} missing`)
  for (const name of have.sets) if (!want.sets.has(name) && !name.startsWith('node-addresses-')) out.push(`service set ${name} not wanted`)
  for (const [map, wanted] of want.elements) {
    const held = have.elements.get(map)
    if (held === undefined) { out.push(`service map ${map} missing`); continue }
    for (const [key, to] of wanted) {
      const is = held.get(key)
      if (is === undefined) out.push(`service map ${map}: ${key} → ${to} missing`)
      else if (is !== to) out.push(`service map ${map}: ${key} goes to ${is}, want ${to}`)
    }
    for (const [key, is] of held) if (!wanted.has(key)) out.push(`service map ${map}: ${key} → ${is} not wanted`)
  }
  return out
}

// What `podmeshctl diff` compares of the service table (issue #11): the chains (shared pick
// chains, affinity services' own) with their number of rules, the affinity sets, every dispatch
// map's elements with the chain each goes to, every endpoint map's slots with the endpoint each
// holds, and the hairpin pairs. Built from the ruleset podmeshd would apply, and from the
// kernel's table (lib/dataplane/nft/table-read.ts), so that a stale element, a chain gone or
// grown, or a set missing shows as one line each. The fixed frame (base chains, their rules) is
// not compared rule by rule: a full sync writes it whole, and its absence shows as a missing table.
import { ENDPOINT_MAP_NAMES, MAP_NAMES, endpointElements, rulesetTable, type MapElement, type ServiceRuleset } from './rules'

export interface TableSummary {
  /** Chain name → number of rules (pick chains and the chains of services with affinity). */
  chains: ReadonlyMap<string, number>
  sets: ReadonlySet<string>
  /**
   * Map or set name → element key ("10.96.0.10 . tcp . 80", "10.96.0.10 . 80 . 0") → what it
   * maps to (a chain, "10.244.1.2 . 8080"; '' for a set's element).
   */
  elements: ReadonlyMap<string, ReadonlyMap<string, string>>
}

/** The chain a packet to a service without endpoints goes to (render.ts names it so). */
export const REJECT_CHAIN = 'reject-no-endpoints'

export const elementKey = (e: Pick<MapElement, 'ip' | 'protocol' | 'port'>): string =>
  `${e.ip !== undefined ? `${e.ip} . ` : ''}${e.protocol} . ${e.port}`

export function rulesetSummary (r: ServiceRuleset): TableSummary {
  const t = rulesetTable(r)
  const elements = new Map<string, Map<string, string>>()
  for (const name of MAP_NAMES) {
    elements.set(name, new Map(t.maps[name].map(e => [elementKey(e), e.verdict === 'reject' ? REJECT_CHAIN : e.verdict.goto])))
  }
  for (const name of ENDPOINT_MAP_NAMES) {
    elements.set(name, new Map(t.endpoints[name].flatMap(endpointElements).map(e =>
      [`${e.ip !== undefined ? `${e.ip} . ` : ''}${e.port} . ${e.slot}`, `${e.endpoint} . ${e.targetPort}`])))
  }
  for (const f of [4, 6] as const) elements.set(`hairpin-v${f}`, new Map(r.hairpin[f].map(ip => [`${ip} . ${ip}`, ''])))
  return {
    chains: new Map(Object.entries(t.chains).map(([name, rules]) => [name, rules.length])),
    sets: new Set(Object.keys(t.sets)),
    elements
  }
}

/** Pick chains and the chains of services (rules.ts names them so); the frame's are not. */
/** Sets of the frame or held as elements (hairpin pairs): not counted among the affinity sets. */
const isFrameSet = (name: string): boolean => name.startsWith('node-addresses-') || name.startsWith('hairpin-')
const isModelChain = (name: string): boolean => /^(pick|svc|ext)-/.test(name)

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
  for (const name of have.sets) if (!want.sets.has(name) && !isFrameSet(name)) out.push(`service set ${name} not wanted`)
  for (const [map, wanted] of want.elements) {
    const held = have.elements.get(map)
    if (held === undefined) { out.push(`service map ${map} missing`); continue }
    const to = (x: string): string => (x === '' ? '' : ` → ${x}`)
    for (const [key, want] of wanted) {
      const is = held.get(key)
      if (is === undefined) out.push(`service map ${map}: ${key}${to(want)} missing`)
      else if (is !== want) out.push(`service map ${map}: ${key} goes to ${is}, want ${want}`)
    }
    for (const [key, is] of held) if (!wanted.has(key)) out.push(`service map ${map}: ${key}${to(is)} not wanted`)
  }
  return out
}

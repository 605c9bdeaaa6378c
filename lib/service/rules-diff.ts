// The difference between the ruleset in the kernel and the desired one, as the few objects to
// add, rewrite and delete: one endpoint change at 10,000 services touches a service chain and an
// endpoint chain, not the 100,000 others. Pure; lib/dataplane/nft/render writes it as one
// transaction. When the table's fixed part differs there is no partial change: sync it whole.

import { isDeepStrictEqual } from 'node:util'
import { MAP_NAMES, type AffinitySet, type MapElement, type MapName, type Rule, type ServiceRuleset } from './rules'

// Field by field rather than isDeepStrictEqual: a resync compares 100,000 chains, and the
// generic comparison is what made it slow.
const elementsEqual = (a: MapElement, b: MapElement): boolean =>
  a === b || (a.ip === b.ip && a.protocol === b.protocol && a.port === b.port &&
    (a.verdict === 'reject' || b.verdict === 'reject' ? a.verdict === b.verdict : a.verdict.goto === b.verdict.goto))

function ruleEqual (a: Rule, b: Rule): boolean {
  switch (a.kind) {
    case 'masqueradeFrom': return b.kind === a.kind && a.family === b.family && a.saddr === b.saddr
    case 'masquerade': return b.kind === a.kind
    case 'affinityUpdate': return b.kind === a.kind && a.family === b.family && a.set === b.set
    case 'affinityCheck': return b.kind === a.kind && a.family === b.family && a.set === b.set && a.chain === b.chain
    case 'randomEndpoint': return b.kind === a.kind && a.chains.length === b.chains.length && a.chains.every((c, i) => c === b.chains[i])
    case 'dnat': return b.kind === a.kind && a.family === b.family && a.protocol === b.protocol && a.ip === b.ip && a.port === b.port
    case 'goto': return b.kind === a.kind && a.chain === b.chain
  }
}

const rulesEqual = (a: readonly Rule[], b: readonly Rule[]): boolean =>
  a === b || (a.length === b.length && a.every((r, i) => ruleEqual(r, b[i] as Rule)))

export interface RulesetChange {
  /** Chains that do not exist yet, with their rules. */
  addChains: Record<string, Rule[]>
  /** Chains that exist and get these rules instead of theirs. */
  rewriteChains: Record<string, Rule[]>
  deleteChains: string[]
  addSets: Record<string, AffinitySet>
  deleteSets: string[]
  /** Elements to remove (gone or changed), by map, as their keys' data. */
  deleteElements: Partial<Record<MapName, MapElement[]>>
  /** Elements to add (new or changed), by map. */
  addElements: Partial<Record<MapName, MapElement[]>>
}

export const isEmptyChange = (c: RulesetChange): boolean =>
  Object.keys(c.addChains).length === 0 && Object.keys(c.rewriteChains).length === 0 && c.deleteChains.length === 0 &&
  Object.keys(c.addSets).length === 0 && c.deleteSets.length === 0 &&
  Object.keys(c.deleteElements).length === 0 && Object.keys(c.addElements).length === 0

/** What turns `from` into `to`; 'full' when the fixed part (mark, NodePort addresses) changed. */
export function diffRulesets (from: ServiceRuleset, to: ServiceRuleset): RulesetChange | 'full' {
  if (!isDeepStrictEqual(from.frame, to.frame)) return 'full'
  const c: RulesetChange = { addChains: {}, rewriteChains: {}, deleteChains: [], addSets: {}, deleteSets: [], deleteElements: {}, addElements: {} }
  for (const [name, rules] of Object.entries(to.chains)) {
    const old = from.chains[name]
    if (old === undefined) c.addChains[name] = rules
    else if (!rulesEqual(old, rules)) c.rewriteChains[name] = rules
  }
  for (const name of Object.keys(from.chains)) if (to.chains[name] === undefined) c.deleteChains.push(name)
  for (const [name, set] of Object.entries(to.sets)) {
    const old = from.sets[name]
    // A set's name carries its timeout, so a set of the same name is the same set.
    if (old === undefined) c.addSets[name] = set
  }
  for (const name of Object.keys(from.sets)) if (to.sets[name] === undefined) c.deleteSets.push(name)
  for (const map of MAP_NAMES) {
    const before = from.maps[map]
    const after = to.maps[map]
    const del: MapElement[] = []
    const add: MapElement[] = []
    for (const [key, e] of Object.entries(before)) {
      const now = after[key]
      if (now === undefined || !elementsEqual(now, e)) del.push(e)
    }
    for (const [key, e] of Object.entries(after)) {
      const was = before[key]
      if (was === undefined || !elementsEqual(was, e)) add.push(e)
    }
    if (del.length > 0) c.deleteElements[map] = del
    if (add.length > 0) c.addElements[map] = add
  }
  return c
}

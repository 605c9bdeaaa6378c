// The difference between the ruleset in the kernel and the desired one, as the few objects to
// add, rewrite and delete: one endpoint change at 10,000 services is a few endpoint-map elements,
// not a walk over 100,000 others. Pure; lib/dataplane/nft/render writes it as one transaction.
// Compared per service: a service whose part is the same object in both rulesets (ruleset.ts
// keeps unchanged parts) is skipped at once; others, and rulesets that came through JSON, are
// compared field by field. When the table's fixed part differs there is no partial change: sync
// it whole.

import {
  NO_SERVICE_RULES, endpointElements, mapElementKey, sameFrame,
  type AffinitySet, type EndpointElement, type EndpointMapName, type Family, type MapElement, type MapName, type Rule,
  type ServiceRules, type ServiceRuleset
} from './rules'

const elementsEqual = (a: MapElement, b: MapElement): boolean =>
  a === b || (a.ip === b.ip && a.protocol === b.protocol && a.port === b.port &&
    (a.verdict === 'reject' || b.verdict === 'reject' ? a.verdict === b.verdict : a.verdict.goto === b.verdict.goto))

const endpointsEqual = (a: EndpointElement, b: EndpointElement): boolean =>
  a === b || (a.ip === b.ip && a.protocol === b.protocol && a.port === b.port && a.slot === b.slot && a.endpoint === b.endpoint && a.targetPort === b.targetPort)

function ruleEqual (a: Rule, b: Rule): boolean {
  switch (a.kind) {
    case 'masquerade': return b.kind === a.kind
    case 'goto': return b.kind === a.kind && a.chain === b.chain
    case 'pickEndpoint': return b.kind === a.kind && a.family === b.family && a.protocol === b.protocol && a.via === b.via && a.count === b.count
    case 'affinityDnat': return b.kind === a.kind && a.family === b.family && a.set === b.set && a.protocol === b.protocol && a.ip === b.ip && a.port === b.port
    case 'chooseDnat': return b.kind === a.kind && a.family === b.family && a.among === b.among && a.set === b.set && a.protocol === b.protocol && a.ip === b.ip && a.port === b.port
  }
}

const rulesEqual = (a: readonly Rule[], b: readonly Rule[]): boolean =>
  a === b || (a.length === b.length && a.every((r, i) => ruleEqual(r, b[i] as Rule)))

export interface RulesetChange {
  /** Chains that do not exist yet, with their rules. */
  addChains: Record<string, readonly Rule[]>
  /** Chains that exist and get these rules instead of theirs. */
  rewriteChains: Record<string, readonly Rule[]>
  deleteChains: string[]
  addSets: Record<string, AffinitySet>
  deleteSets: string[]
  /** Dispatch-map elements to remove (gone or changed), by map, as their keys' data. */
  deleteElements: Partial<Record<MapName, MapElement[]>>
  /** Dispatch-map elements to add (new or changed), by map. */
  addElements: Partial<Record<MapName, MapElement[]>>
  deleteEndpoints: Partial<Record<EndpointMapName, EndpointElement[]>>
  addEndpoints: Partial<Record<EndpointMapName, EndpointElement[]>>
  /** Local endpoint addresses whose hairpin pair goes, or comes, per family. */
  deleteHairpin: Partial<Record<Family, string[]>>
  addHairpin: Partial<Record<Family, string[]>>
}

export const emptyChange = (): RulesetChange => ({
  addChains: {}, rewriteChains: {}, deleteChains: [], addSets: {}, deleteSets: [],
  deleteElements: {}, addElements: {}, deleteEndpoints: {}, addEndpoints: {}, deleteHairpin: {}, addHairpin: {}
})

export const isEmptyChange = (c: RulesetChange): boolean =>
  Object.keys(c.addChains).length === 0 && Object.keys(c.rewriteChains).length === 0 && c.deleteChains.length === 0 &&
  Object.keys(c.addSets).length === 0 && c.deleteSets.length === 0 &&
  Object.keys(c.deleteElements).length === 0 && Object.keys(c.addElements).length === 0 &&
  Object.keys(c.deleteEndpoints).length === 0 && Object.keys(c.addEndpoints).length === 0 &&
  Object.keys(c.deleteHairpin).length === 0 && Object.keys(c.addHairpin).length === 0

function diffChains (from: Readonly<Record<string, readonly Rule[]>>, to: Readonly<Record<string, readonly Rule[]>>, c: RulesetChange): void {
  if (from === to) return
  for (const [name, rules] of Object.entries(to)) {
    const old = from[name]
    if (old === undefined) c.addChains[name] = rules
    else if (!rulesEqual(old, rules)) c.rewriteChains[name] = rules
  }
  for (const name of Object.keys(from)) if (to[name] === undefined) c.deleteChains.push(name)
}

/** Dispatch elements of `from` that `to` lacks or has otherwise are deleted; those of `to` that are new or changed are added. */
function diffElements (from: ServiceRules['maps'], to: ServiceRules['maps'], c: RulesetChange): void {
  if (from === to) return
  for (const map of new Set([...Object.keys(from), ...Object.keys(to)] as MapName[])) {
    const before = from[map] ?? []
    const after = to[map] ?? []
    if (before === after) continue
    const afterByKey = new Map(after.map(e => [mapElementKey(e), e]))
    const beforeByKey = new Map(before.map(e => [mapElementKey(e), e]))
    for (const [key, e] of beforeByKey) {
      const now = afterByKey.get(key)
      if (now === undefined || !elementsEqual(now, e)) (c.deleteElements[map] ??= []).push(e)
    }
    for (const [key, e] of afterByKey) {
      const was = beforeByKey.get(key)
      if (was === undefined || !elementsEqual(was, e)) (c.addElements[map] ??= []).push(e)
    }
  }
}

/** Endpoint slots: a slot whose endpoint changed is deleted and added again; slots past the end come or go. */
function diffSlots (from: ServiceRules['endpoints'], to: ServiceRules['endpoints'], c: RulesetChange): void {
  if (from === to) return
  const maps = new Set([...Object.keys(from), ...Object.keys(to)] as EndpointMapName[])
  for (const map of maps) {
    const before = new Map((from[map] ?? []).map(s => [mapElementKey(s), s]))
    const after = new Map((to[map] ?? []).map(s => [mapElementKey(s), s]))
    for (const key of new Set([...before.keys(), ...after.keys()])) {
      const a = before.get(key)
      const b = after.get(key)
      if (a === b) continue
      const was = a === undefined ? [] : endpointElements(a)
      const now = b === undefined ? [] : endpointElements(b)
      for (let i = 0; i < Math.max(was.length, now.length); i++) {
        const x = was[i]
        const y = now[i]
        if (x !== undefined && y !== undefined && endpointsEqual(x, y)) continue
        if (x !== undefined) (c.deleteEndpoints[map] ??= []).push(x)
        if (y !== undefined) (c.addEndpoints[map] ??= []).push(y)
      }
    }
  }
}

function diffService (from: ServiceRules, to: ServiceRules, c: RulesetChange): void {
  diffChains(from.chains, to.chains, c)
  for (const [name, set] of Object.entries(to.sets)) {
    // A set's name carries its timeout, so a set of the same name is the same set.
    if (from.sets[name] === undefined) c.addSets[name] = set
  }
  for (const name of Object.keys(from.sets)) if (to.sets[name] === undefined) c.deleteSets.push(name)
  diffElements(from.maps, to.maps, c)
  diffSlots(from.endpoints, to.endpoints, c)
}

function diffHairpin (from: readonly string[], to: readonly string[], f: Family, c: RulesetChange): void {
  if (from === to) return
  const before = new Set(from)
  const after = new Set(to)
  const gone = from.filter(ip => !after.has(ip))
  const come = to.filter(ip => !before.has(ip))
  if (gone.length > 0) c.deleteHairpin[f] = gone
  if (come.length > 0) c.addHairpin[f] = come
}

/** What turns `from` into `to`; 'full' when the fixed part (mark, NodePort addresses) changed. */
export function diffRulesets (from: ServiceRuleset, to: ServiceRuleset): RulesetChange | 'full' {
  if (!sameFrame(from.frame, to.frame)) return 'full'
  const c = emptyChange()
  if (from.services !== to.services) {
    // for…in rather than Object.entries: 10,000 services would be 10,000 arrays per diff.
    for (const name in to.services) {
      const rules = to.services[name] as ServiceRules
      const old = from.services[name]
      if (old !== rules) diffService(old ?? NO_SERVICE_RULES, rules, c)
    }
    for (const name in from.services) {
      if (to.services[name] === undefined) diffService(from.services[name] as ServiceRules, NO_SERVICE_RULES, c)
    }
  }
  diffChains(from.chains, to.chains, c)
  for (const f of [4, 6] as const) diffHairpin(from.hairpin[f], to.hairpin[f], f, c)
  return c
}

// The whole ruleset of one node from every service's part (service-rules.ts). A RulesetBuilder
// keeps the parts of the last build: a service whose spec, endpoints and node are the same as
// last time keeps its part (the same object, so rules-diff.ts skips it by identity), and only the
// services that changed are recomputed. The work left per build that grows with the number of
// services is one pass of identity and field comparisons over the input.
//
// Where two services claim one map key (the same cluster IP, protocol and port, or the same
// NodePort; etcd's create-only claims keep this from happening, a hostile value may not), the
// first by name has it, with the key's endpoints; the other's elements for that key are left out.

import {
  ENDPOINT_MAP_NAMES, MAP_NAMES, DEFAULT_MASQUERADE_MARK, NO_SERVICE_RULES, familyOf, mapElementKey, pickChainName, pickChainRules, sameFrame,
  type EndpointMapName, type EndpointSlots, type Family, type MapElement, type MapName, type PickChain, type RulesetFrame, type RulesetInput,
  type ServiceRules, type ServiceRuleset
} from './rules'
import { serviceRules } from './service-rules'
import type { Endpoint, ServiceSpec } from './types'

const NO_ENDPOINTS: readonly Endpoint[] = []

/**
 * Pick chains for 1 to this many endpoints are kept for every kind, protocol and family in use,
 * used or not. A new chain that reads an endpoint map makes the kernel walk every element of the
 * map (binding it to the chain: 20–40 ms for 100,000 elements here), so a service whose number of
 * endpoints changes should find its chain there; a full sync binds them before the map is filled,
 * for nothing. Above this, chains come and go with the services that use them.
 */
export const PRESET_PICK_COUNTS = 16

const pickGroup = (p: PickChain): string => `${p.kind}/${p.protocol}/${p.family}`

/** Maps whose keys are one claim: a cluster IP key is taken in either of its maps, and with its endpoints. */
const claimGroup = (map: MapName | EndpointMapName): string =>
  `${map.includes('node-port') ? 'node-port' : 'cluster'}-${map.endsWith('v6') ? 'v6' : 'v4'}`

function claimsOf (rules: ServiceRules): string[] {
  const out: string[] = []
  for (const [map, es] of Object.entries(rules.maps) as Array<[MapName, readonly MapElement[]]>) {
    for (const e of es) out.push(`${claimGroup(map)}|${mapElementKey(e)}`)
  }
  return out
}

/** `rules` without the elements of the claims it lost (and without pick chains no element goes to any more). */
function withoutClaims (rules: ServiceRules, lost: ReadonlySet<string>): ServiceRules {
  const maps: Partial<Record<MapName, MapElement[]>> = {}
  const picks: Record<string, PickChain> = {}
  for (const map of MAP_NAMES) {
    const es = rules.maps[map]
    if (es === undefined) continue
    const kept = es.filter(e => !lost.has(`${claimGroup(map)}|${mapElementKey(e)}`))
    maps[map] = kept
    for (const e of kept) {
      if (e.verdict === 'reject') continue
      const p = rules.picks[e.verdict.goto]
      if (p !== undefined) picks[e.verdict.goto] = p
    }
  }
  const endpoints: Partial<Record<EndpointMapName, EndpointSlots[]>> = {}
  for (const map of ENDPOINT_MAP_NAMES) {
    const es = rules.endpoints[map]
    // Endpoint slots belong to their service address's claim.
    if (es !== undefined) endpoints[map] = es.filter(e => !lost.has(`${claimGroup(map)}|${mapElementKey(e)}`))
  }
  return { ...rules, maps, picks, endpoints }
}

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])

/** The same spec as far as the rules go (the selector only chooses the endpoints, which are compared apart). */
const sameSpec = (a: ServiceSpec, b: ServiceSpec): boolean => a === b || (
  a.name === b.name && a.type === b.type && a.sessionAffinity === b.sessionAffinity &&
  a.affinityTimeoutSeconds === b.affinityTimeoutSeconds && a.externalTrafficPolicy === b.externalTrafficPolicy &&
  sameList(a.clusterIPs, b.clusterIPs) && a.ports.length === b.ports.length &&
  a.ports.every((p, i) => {
    const q = b.ports[i]
    return q !== undefined && p.protocol === q.protocol && p.port === q.port && p.targetPort === q.targetPort && p.nodePort === q.nodePort
  }))

const sameEndpoints = (a: readonly Endpoint[], b: readonly Endpoint[]): boolean => a === b || (
  a.length === b.length && a.every((e, i) => {
    const o = b[i]
    return o !== undefined && e.ip === o.ip && e.node === o.node && e.local === o.local
  }))

function rulesetFrame (input: RulesetInput): RulesetFrame {
  const addresses = (f: Family): string[] => [...new Set(input.nodeAddresses[f] ?? [])].filter(a => familyOf(a) === f).sort()
  return { masqueradeMark: input.options?.masqueradeMark ?? DEFAULT_MASQUERADE_MARK, nodePortAddresses: { 4: addresses(4), 6: addresses(6) } }
}

/** Services in name order; an input already in order (etcd lists by key) is not copied. */
function inNameOrder (services: readonly ServiceSpec[]): readonly ServiceSpec[] {
  for (let i = 1; i < services.length; i++) {
    if ((services[i - 1] as ServiceSpec).name > (services[i] as ServiceSpec).name) {
      return [...services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    }
  }
  return services
}

interface Entry {
  spec: ServiceSpec
  endpoints: readonly Endpoint[]
  node: string
  /** The service's part with every key it asks for. */
  candidate: ServiceRules
  /** What it has in the table: `candidate`, or less where another service has a key first. */
  rules: ServiceRules
  /** The last build that saw it. */
  build: number
}

/** Builds rulesets for a sequence of inputs, reusing each unchanged service's part of the last one. */
export class RulesetBuilder {
  private readonly entries = new Map<string, Entry>()
  /** Claim → the services that ask for it, in name order (one, but for clashes). */
  private readonly claimants = new Map<string, string[]>()
  private readonly pickUses = new Map<string, { uses: number, chain: PickChain }>()
  /** Pick chains in use per kind, protocol and family: while there is one, the preset counts are kept. */
  private readonly pickGroups = new Map<string, { uses: number, chain: PickChain }>()
  private readonly hairpinUses: Record<Family, Map<string, number>> = { 4: new Map(), 6: new Map() }
  private picksChanged = false
  private readonly hairpinChanged: Record<Family, boolean> = { 4: false, 6: false }
  private last: ServiceRuleset | undefined
  private builds = 0

  build (input: RulesetInput): ServiceRuleset {
    const build = ++this.builds
    const order = inNameOrder(input.services)
    const recheck = new Set<string>()
    let seen = 0
    let membership = false
    for (const svc of order) {
      const e = this.entries.get(svc.name)
      if (e?.build === build) continue // a second spec of one name: the first counts
      seen++
      const eps = input.endpoints.get(svc.name) ?? NO_ENDPOINTS
      if (e !== undefined && e.node === input.node && sameSpec(e.spec, svc) && sameEndpoints(e.endpoints, eps)) {
        // Keep the newest objects, so that the next build's comparisons stop at identity.
        e.spec = svc; e.endpoints = eps; e.build = build
        continue
      }
      const candidate = serviceRules(svc, eps, input.node)
      if (e === undefined) {
        membership = true
        this.entries.set(svc.name, { spec: svc, endpoints: eps, node: input.node, candidate, rules: NO_SERVICE_RULES, build })
      } else {
        this.unclaim(svc.name, e.candidate, recheck)
        Object.assign(e, { spec: svc, endpoints: eps, node: input.node, candidate, build })
      }
      this.claim(svc.name, candidate, recheck)
      recheck.add(svc.name)
    }
    if (seen < this.entries.size) {
      for (const [name, e] of this.entries) {
        if (e.build === build) continue
        this.unclaim(name, e.candidate, recheck)
        this.release(e.rules)
        this.entries.delete(name)
        membership = true
      }
    }
    let changed = membership
    for (const name of recheck) {
      const e = this.entries.get(name)
      if (e === undefined) continue
      const lost = new Set(claimsOf(e.candidate).filter(c => this.claimants.get(c)?.[0] !== name))
      const rules = lost.size === 0 ? e.candidate : withoutClaims(e.candidate, lost)
      if (rules === e.rules) continue
      this.release(e.rules)
      this.acquire(rules)
      e.rules = rules
      changed = true
    }
    return this.assemble(rulesetFrame(input), order, changed)
  }

  private assemble (frame: RulesetFrame, order: readonly ServiceSpec[], changed: boolean): ServiceRuleset {
    const last = this.last
    const sameFrameAsLast = last !== undefined && sameFrame(last.frame, frame)
    if (last !== undefined && sameFrameAsLast && !changed && !this.picksChanged && !this.hairpinChanged[4] && !this.hairpinChanged[6]) return last
    let services = last?.services
    if (services === undefined || changed) {
      const record: Record<string, ServiceRules> = {}
      for (const svc of order) record[svc.name] ??= (this.entries.get(svc.name) as Entry).rules
      services = record
    }
    let chains = last?.chains
    if (chains === undefined || this.picksChanged) {
      const wanted = new Map<string, PickChain>()
      for (const { chain: g } of this.pickGroups.values()) {
        for (let count = 1; count <= PRESET_PICK_COUNTS; count++) wanted.set(pickChainName(g.kind, g.protocol, g.family, count), { ...g, count })
      }
      for (const [name, p] of this.pickUses) wanted.set(name, p.chain)
      chains = Object.fromEntries([...wanted.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, p]) => [name, pickChainRules(p)]))
    }
    const hairpin = (f: Family): readonly string[] => (last === undefined || this.hairpinChanged[f] ? [...this.hairpinUses[f].keys()].sort() : last.hairpin[f])
    const next: ServiceRuleset = { frame: last !== undefined && sameFrameAsLast ? last.frame : frame, services, chains, hairpin: { 4: hairpin(4), 6: hairpin(6) } }
    this.picksChanged = false
    this.hairpinChanged[4] = this.hairpinChanged[6] = false
    this.last = next
    return next
  }

  private claim (name: string, rules: ServiceRules, recheck: Set<string>): void {
    for (const c of claimsOf(rules)) {
      const list = this.claimants.get(c)
      if (list === undefined) { this.claimants.set(c, [name]); continue }
      for (const other of list) recheck.add(other)
      list.push(name)
      list.sort()
    }
  }

  private unclaim (name: string, rules: ServiceRules, recheck: Set<string>): void {
    for (const c of claimsOf(rules)) {
      const list = this.claimants.get(c)
      if (list === undefined) continue
      const rest = list.filter(n => n !== name)
      if (rest.length === 0) this.claimants.delete(c)
      else { this.claimants.set(c, rest); for (const other of rest) recheck.add(other) }
    }
  }

  /** Counts the shared chains and hairpin addresses `rules` uses; a first use changes the ruleset's. */
  private acquire (rules: ServiceRules): void {
    for (const [name, chain] of Object.entries(rules.picks)) {
      const p = this.pickUses.get(name)
      if (p !== undefined) { p.uses++; continue }
      this.pickUses.set(name, { uses: 1, chain })
      this.picksChanged = true
      const group = this.pickGroups.get(pickGroup(chain))
      if (group !== undefined) group.uses++
      else this.pickGroups.set(pickGroup(chain), { uses: 1, chain })
    }
    for (const f of [4, 6] as const) {
      const uses = this.hairpinUses[f]
      for (const ip of rules.hairpin[f]) {
        const n = uses.get(ip) ?? 0
        uses.set(ip, n + 1)
        if (n === 0) this.hairpinChanged[f] = true
      }
    }
  }

  private release (rules: ServiceRules): void {
    for (const [name, chain] of Object.entries(rules.picks)) {
      const p = this.pickUses.get(name)
      if (p === undefined || --p.uses > 0) continue
      this.pickUses.delete(name)
      this.picksChanged = true
      const group = this.pickGroups.get(pickGroup(chain))
      if (group !== undefined && --group.uses === 0) this.pickGroups.delete(pickGroup(chain))
    }
    for (const f of [4, 6] as const) {
      const uses = this.hairpinUses[f]
      for (const ip of rules.hairpin[f]) {
        const n = uses.get(ip) ?? 0
        if (n <= 1) { uses.delete(ip); this.hairpinChanged[f] = true } else uses.set(ip, n - 1)
      }
    }
  }
}

/** The whole ruleset for this node, from scratch. Services are taken in name order: on a clash of keys the first wins. */
export const serviceRuleset = (input: RulesetInput): ServiceRuleset => new RulesetBuilder().build(input)

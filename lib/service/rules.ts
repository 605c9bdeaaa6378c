// Desired service rules (issue #11), as plain data: what podmesh's nftables table must hold for
// a set of services and their endpoints on one node. Pure — no nft text (lib/dataplane/nft/render
// writes that) and no I/O — so that two rulesets can be diffed (rules-diff.ts) into the few map
// elements one endpoint change touches. This file is the model and its names; service-rules.ts
// computes one service's part, ruleset.ts puts the parts together.
//
// The shape follows kube-proxy's nftables mode where it can: a verdict map per family keyed by
// (cluster IP, protocol, port) sends a packet on in one lookup, whatever the number of services.
// It departs from it where nft 1.0.6 and the kernel made a per-endpoint layout cost O(table) per
// change (docs/services.md, "Cost"): a service without ClientIP affinity has no chain of its own.
// Its map element goes to a chain shared by every service with the same protocol and number of
// endpoints, whose one rule DNATs to `endpoints-<protocol>-vN[cluster IP . port . random slot]`,
// a data map.
// So an endpoint change is a few data-map elements: no rule, no chain, no verdict changes.

import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import { PROTOCOLS, type Endpoint, type Protocol, type ServiceSpec } from './types'

export type Family = 4 | 6
export const FAMILIES: readonly Family[] = [4, 6]

/** One rule of a pick chain or of a ClientIP-affinity service's chain. */
export type Rule =
  /** Mark the packet for masquerade (SNAT to the node) in postrouting. */
  | { kind: 'masquerade' }
  | { kind: 'goto', chain: string }
  /**
   * DNAT to one of `count` endpoints chosen uniformly at random: the endpoint map's element for
   * the packet's service address (cluster IP and port, or NodePort) and the random slot.
   */
  | { kind: 'pickEndpoint', family: Family, protocol: Protocol, via: 'clusterIP' | 'nodePort', count: number }
  /** ClientIP affinity: a client in the endpoint's set goes back to that endpoint. */
  | { kind: 'affinityDnat', family: Family, set: string, protocol: Protocol, ip: string, port: number }
  /**
   * ClientIP affinity, the random choice: one step of a cascade that takes this endpoint with
   * probability 1/`among` (the last step, `among` 1, always), remembers the client in the
   * endpoint's set and DNATs. Steps of 1/n, 1/(n−1), … 1/1 give each endpoint 1/n.
   */
  | { kind: 'chooseDnat', family: Family, among: number, set: string, protocol: Protocol, ip: string, port: number }

/** A dynamic set of client addresses for ClientIP affinity, one per endpoint. */
export interface AffinitySet { family: Family, timeoutSeconds: number }

/** Where a map element sends a packet: a chain of the table, or the reject chain. */
export type Verdict = { goto: string } | 'reject'

/** One element of a dispatch map; `ip` is absent in the NodePort maps. */
export interface MapElement { ip?: string, protocol: Protocol, port: number, verdict: Verdict }

/** One slot of a service address's endpoints: (cluster IP,) protocol, port, slot → endpoint address and port. */
export interface EndpointElement { ip?: string, protocol: Protocol, port: number, slot: number, endpoint: string, targetPort: number }

/** A service address's endpoints in slot order: element `slot` of the endpoint map is `endpoints[slot]:targetPort`. */
export interface EndpointSlots { ip?: string, protocol: Protocol, port: number, targetPort: number, endpoints: readonly string[] }

export const endpointElements = (s: EndpointSlots): EndpointElement[] => s.endpoints.map((endpoint, slot) =>
  s.ip === undefined
    ? { protocol: s.protocol, port: s.port, slot, endpoint, targetPort: s.targetPort }
    : { ip: s.ip, protocol: s.protocol, port: s.port, slot, endpoint, targetPort: s.targetPort })

/** The table's dispatch maps: per family, cluster IPs and NodePorts, each with endpoints (nat) or without (filter: reject). */
export const MAP_NAMES = [
  'cluster-ips-v4', 'cluster-ips-v6',
  'node-ports-v4', 'node-ports-v6',
  'no-endpoints-v4', 'no-endpoints-v6',
  'no-endpoint-node-ports-v4', 'no-endpoint-node-ports-v6'
] as const
export type MapName = typeof MAP_NAMES[number]

/**
 * The endpoint maps (data maps: address and port, no verdict), for cluster IPs and for NodePorts,
 * per protocol and family: `endpoints-tcp-v4`, `node-port-endpoints-udp-v6`, … One per protocol
 * because nft derives the DNAT's protocol from the map's declared port (render.ts).
 */
export type EndpointMapName = `${'endpoints' | 'node-port-endpoints'}-${Protocol}-v${Family}`
export const endpointMapName = (via: 'clusterIP' | 'nodePort', protocol: Protocol, f: Family): EndpointMapName =>
  `${via === 'clusterIP' ? 'endpoints' : 'node-port-endpoints'}-${protocol}-v${f}`
export const ENDPOINT_MAP_NAMES: readonly EndpointMapName[] = (['clusterIP', 'nodePort'] as const).flatMap(via =>
  PROTOCOLS.flatMap(p => FAMILIES.map(f => endpointMapName(via, p, f))))

/** What a map is keyed by: the family of its address (if any). */
export const mapKeyed = (name: MapName | EndpointMapName): { family: Family, byAddress: boolean } => ({
  family: name.endsWith('v6') ? 6 : 4,
  byAddress: !name.includes('node-port')
})

/** The protocol of an endpoint map. */
export const endpointMapProtocol = (name: EndpointMapName): Protocol => PROTOCOLS.find(p => name.includes(`-${p}-`)) as Protocol

/** The table's fixed part: base chains and helpers depend only on these. */
export interface RulesetFrame {
  masqueradeMark: number
  /** Where NodePorts answer, per family: these addresses, or every local address but loopback when empty. */
  nodePortAddresses: { 4: string[], 6: string[] }
}

/** What one service puts in the table. */
export interface ServiceRules {
  /** Its own chains (ClientIP affinity only), each with its rules in order. */
  readonly chains: Readonly<Record<string, readonly Rule[]>>
  /** Pick chains its elements go to, by name; shared with every service that has the same protocol and number of endpoints. */
  readonly picks: Readonly<Record<string, PickChain>>
  readonly sets: Readonly<Record<string, AffinitySet>>
  // Elements are lists, not records by key: a record per service with keys no other service has
  // (its cluster IP is in each) gives V8 a hidden class per service and made a full build 10×
  // slower. Keys (`mapElementKey`) are unique within a list.
  /** Dispatch map elements, by map. */
  readonly maps: Readonly<Partial<Record<MapName, readonly MapElement[]>>>
  /** Endpoint map elements, by map, as one entry per service address. */
  readonly endpoints: Readonly<Partial<Record<EndpointMapName, readonly EndpointSlots[]>>>
  /** Its endpoints on this node, per family: a pod that reaches the service and lands on itself is masqueraded (hairpin). */
  readonly hairpin: { readonly 4: readonly string[], readonly 6: readonly string[] }
}

export interface ServiceRuleset {
  frame: RulesetFrame
  /** Each service's part, by name, in name order (where two claim one map key, the first by name has it: ruleset.ts). */
  services: Readonly<Record<string, ServiceRules>>
  /** The pick chains: the union of the services' `picks`, and the preset ones (ruleset.ts). */
  chains: Readonly<Record<string, readonly Rule[]>>
  /** Local endpoint addresses per family, sorted: `hairpin-vN` holds (address . address) for each. */
  hairpin: { readonly 4: readonly string[], readonly 6: readonly string[] }
}

/** A service that puts nothing in the table (the other side of a diff for a service that comes or goes). */
export const NO_SERVICE_RULES: ServiceRules = { chains: {}, picks: {}, sets: {}, maps: {}, endpoints: {}, hairpin: { 4: [], 6: [] } }

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i])
export const sameFrame = (a: RulesetFrame, b: RulesetFrame): boolean => a === b || (
  a.masqueradeMark === b.masqueradeMark && sameList(a.nodePortAddresses[4], b.nodePortAddresses[4]) && sameList(a.nodePortAddresses[6], b.nodePortAddresses[6]))

export interface RulesetOptions {
  /** The packet mark bit that asks postrouting to masquerade; default 0x4000 (kube-proxy's). */
  masqueradeMark?: number
}

export interface RulesetInput {
  services: readonly ServiceSpec[]
  /** Endpoints by service name (svc-model's resolveEndpoints). */
  endpoints: ReadonlyMap<string, readonly Endpoint[]>
  /** This node's name: an endpoint on it is local (for externalTrafficPolicy Local and hairpin). */
  node: string
  /** The node's own underlay addresses per family: where NodePorts answer. */
  nodeAddresses: { 4?: readonly string[], 6?: readonly string[] }
  options?: RulesetOptions
}

export const DEFAULT_MASQUERADE_MARK = 0x4000
/** kube-proxy's default ClientIP affinity timeout (3 hours). */
export const DEFAULT_AFFINITY_TIMEOUT_S = 10800

/** The table every rule lives in; podmesh touches no other. */
export const SERVICE_TABLE = { family: 'inet', name: 'podmesh' } as const

export const familyOf = (ip: string): Family | undefined => {
  const v = isIP(ip)
  return v === 4 ? 4 : v === 6 ? 6 : undefined
}

export const mapElementKey = (e: Pick<MapElement, 'ip' | 'protocol' | 'port'>): string => `${e.ip ?? ''}|${e.protocol}|${e.port}`

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567'
/** Readable part of a name: nft identifier characters only, bounded so that names stay short. */
const READABLE_MAX = 40

/**
 * A deterministic nft identifier for one object: `<prefix>-<hash>-<readable>`. The hash (40 bits
 * of SHA-256 over the full key, base32) keeps names unique when the readable part is cut or its
 * characters replaced; the readable part lets an operator find the service in `nft list`.
 */
export function objectName (prefix: string, parts: readonly string[]): string {
  const key = `${prefix}\0${parts.join('/')}`
  const known = nameMemo.get(key)
  if (known !== undefined) return known
  const name = hashedName(prefix, parts)
  // A full rebuild names every affinity chain and set; hashing each every time costs more than the rest.
  if (nameMemo.size >= NAME_MEMO_LIMIT) nameMemo.clear()
  nameMemo.set(key, name)
  return name
}

const nameMemo = new Map<string, string>()
const NAME_MEMO_LIMIT = 500_000

function hashedName (prefix: string, parts: readonly string[]): string {
  const digest = createHash('sha256').update(parts.join('/')).digest()
  let bits = 0
  let value = 0
  let hash = ''
  for (const byte of digest) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5 && hash.length < 8) {
      hash += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    if (hash.length === 8) break
  }
  const readable = parts.join('-').toLowerCase().replace(/[^a-z0-9_.-]/g, '_').slice(0, READABLE_MAX)
  return `${prefix}-${hash}-${readable}`
}

export const familyTag = (f: Family): string => `v${f}`
const portParts = (svc: ServiceSpec, p: ServiceSpec['ports'][number], f: Family): string[] => [svc.name, p.protocol, String(p.port), familyTag(f)]
/** A ClientIP-affinity service's chain for one port and family. */
export const serviceChainName = (svc: ServiceSpec, p: ServiceSpec['ports'][number], f: Family): string => objectName('svc', portParts(svc, p, f))
/** A ClientIP-affinity service's NodePort chain for one port and family. */
export const nodePortChainName = (svc: ServiceSpec, p: ServiceSpec['ports'][number], f: Family): string => objectName('ext', portParts(svc, p, f))
export const affinitySetName = (svc: ServiceSpec, p: ServiceSpec['ports'][number], ip: string, timeoutSeconds: number): string =>
  objectName('aff', [svc.name, p.protocol, String(p.port), ip, String(timeoutSeconds)])

/** What a pick chain does: choose among a cluster IP's endpoints, a NodePort's, or a NodePort's after marking for masquerade. */
export type PickKind = 'cluster-ip' | 'node-port' | 'node-port-masquerade'

/** A shared chain that picks one of `count` endpoints of a service address. */
export interface PickChain { kind: PickKind, protocol: Protocol, family: Family, count: number }

/** `pick-tcp-3-v4`, `pick-node-port-udp-1-v6`, `pick-node-port-masquerade-tcp-2-v4`, … */
export const pickChainName = (kind: PickKind, protocol: Protocol, f: Family, count: number): string =>
  `pick-${kind === 'cluster-ip' ? '' : `${kind}-`}${protocol}-${count}-${familyTag(f)}`

/** A pick chain's rules; one array per chain name, shared by every ruleset that has the chain. */
export function pickChainRules (p: PickChain): readonly Rule[] {
  const name = pickChainName(p.kind, p.protocol, p.family, p.count)
  let rules = pickRules.get(name)
  if (rules === undefined) {
    const pick: Rule = { kind: 'pickEndpoint', family: p.family, protocol: p.protocol, via: p.kind === 'cluster-ip' ? 'clusterIP' : 'nodePort', count: p.count }
    rules = p.kind === 'node-port-masquerade' ? [{ kind: 'masquerade' }, pick] : [pick]
    pickRules.set(name, rules)
  }
  return rules
}
const pickRules = new Map<string, readonly Rule[]>()

/** The whole table as flat maps (what a full sync writes, and what tests read): services in name order. */
export interface RulesetTable {
  chains: Record<string, readonly Rule[]>
  sets: Record<string, AffinitySet>
  maps: Record<MapName, MapElement[]>
  endpoints: Record<EndpointMapName, EndpointSlots[]>
}

export function rulesetTable (r: ServiceRuleset): RulesetTable {
  const t: RulesetTable = {
    chains: { ...r.chains },
    sets: {},
    maps: Object.fromEntries(MAP_NAMES.map(n => [n, []])) as unknown as RulesetTable['maps'],
    endpoints: Object.fromEntries(ENDPOINT_MAP_NAMES.map(n => [n, []])) as unknown as RulesetTable['endpoints']
  }
  for (const s of Object.values(r.services)) {
    Object.assign(t.chains, s.chains)
    Object.assign(t.sets, s.sets)
    for (const [map, es] of Object.entries(s.maps) as Array<[MapName, readonly MapElement[]]>) for (const e of es) t.maps[map].push(e)
    for (const [map, es] of Object.entries(s.endpoints) as Array<[EndpointMapName, readonly EndpointSlots[]]>) for (const e of es) t.endpoints[map].push(e)
  }
  return t
}

// Desired service rules (issue #11), as plain data: what podmesh's nftables table must hold for
// a set of services and their endpoints on one node. Pure — no nft text (lib/dataplane/nft/render
// writes that) and no I/O — so that two rulesets can be diffed (rules-diff.ts) into the few
// chains and map elements one endpoint change touches.
//
// The shape follows kube-proxy's nftables mode: a verdict map per family keyed by
// (cluster IP, protocol, port) sends a packet to its service port's chain in one lookup, whatever
// the number of services; that chain picks an endpoint chain at random; the endpoint chain DNATs.
// NodePorts are a second map keyed by (protocol, port) for packets to the node's own addresses.

import { createHash } from 'node:crypto'
import { isIP } from 'node:net'
import type { Endpoint, Protocol, ServicePort, ServiceSpec } from './types'

export type Family = 4 | 6
export const FAMILIES: readonly Family[] = [4, 6]

/** One rule of a service, NodePort or endpoint chain. */
export type Rule =
  /** Hairpin: a packet from the endpoint itself is masqueraded, or its reply would never come back through the node. */
  | { kind: 'masqueradeFrom', family: Family, saddr: string }
  /** Mark the packet for masquerade (SNAT to the node) in postrouting. */
  | { kind: 'masquerade' }
  /** ClientIP affinity: remember the client in the endpoint's set (its timeout restarts). */
  | { kind: 'affinityUpdate', family: Family, set: string }
  /** ClientIP affinity: a client already in an endpoint's set goes to that endpoint. */
  | { kind: 'affinityCheck', family: Family, set: string, chain: string }
  /** Goes to one of the endpoint chains, chosen uniformly at random. */
  | { kind: 'randomEndpoint', chains: string[] }
  | { kind: 'dnat', family: Family, protocol: Protocol, ip: string, port: number }
  | { kind: 'goto', chain: string }

/** A dynamic set of client addresses for ClientIP affinity, one per endpoint. */
export interface AffinitySet { family: Family, timeoutSeconds: number }

/** Where a map element sends a packet: a chain of the table, or the reject chain. */
export type Verdict = { goto: string } | 'reject'

/** One element of a dispatch map; `ip` is absent in the NodePort maps. */
export interface MapElement { ip?: string, protocol: Protocol, port: number, verdict: Verdict }

/** The table's maps: per family, cluster IPs and NodePorts, each with endpoints (nat) or without (filter: reject). */
export const MAP_NAMES = [
  'cluster-ips-v4', 'cluster-ips-v6',
  'node-ports-v4', 'node-ports-v6',
  'no-endpoints-v4', 'no-endpoints-v6',
  'no-endpoint-node-ports-v4', 'no-endpoint-node-ports-v6'
] as const
export type MapName = typeof MAP_NAMES[number]

/** What a map is keyed by: the family of its address (if any). */
export const mapKeyed = (name: MapName): { family: Family, byAddress: boolean } => ({
  family: name.endsWith('v6') ? 6 : 4,
  byAddress: !name.includes('node-ports')
})

/** The table's fixed part: base chains and helpers depend only on these. */
export interface RulesetFrame {
  masqueradeMark: number
  /** Where NodePorts answer, per family: these addresses, or every local address but loopback when empty. */
  nodePortAddresses: { 4: string[], 6: string[] }
}

export interface ServiceRuleset {
  frame: RulesetFrame
  /** Service, NodePort and endpoint chains by name, each with its rules in order. */
  chains: Record<string, Rule[]>
  sets: Record<string, AffinitySet>
  /** Elements by a key unique within the map (`mapElementKey`). */
  maps: Record<MapName, Record<string, MapElement>>
}

export interface RulesetOptions {
  /** The packet mark bit that asks postrouting to masquerade; default 0x4000 (kube-proxy's). */
  masqueradeMark?: number
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
  // A resync recomputes every name; hashing 100,000 of them each time costs more than the rest.
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

const familyTag = (f: Family): string => `v${f}`
const portParts = (svc: ServiceSpec, p: ServicePort, f: Family): string[] => [svc.name, p.protocol, String(p.port), familyTag(f)]
export const serviceChainName = (svc: ServiceSpec, p: ServicePort, f: Family): string => objectName('svc', portParts(svc, p, f))
export const nodePortChainName = (svc: ServiceSpec, p: ServicePort, f: Family): string => objectName('ext', portParts(svc, p, f))
export const endpointChainName = (svc: ServiceSpec, p: ServicePort, ip: string): string =>
  objectName('ep', [svc.name, p.protocol, String(p.port), ip, String(p.targetPort)])
export const affinitySetName = (svc: ServiceSpec, p: ServicePort, ip: string, timeoutSeconds: number): string =>
  objectName('aff', [svc.name, p.protocol, String(p.port), ip, String(timeoutSeconds)])

export interface RulesetInput {
  services: readonly ServiceSpec[]
  /** Endpoints by service name (svc-model's resolveEndpoints). */
  endpoints: ReadonlyMap<string, readonly Endpoint[]>
  /** This node's name: an endpoint on it is local (for externalTrafficPolicy Local). */
  node: string
  /** The node's own underlay addresses per family: where NodePorts answer. */
  nodeAddresses: { 4?: readonly string[], 6?: readonly string[] }
  options?: RulesetOptions
}

const emptyMaps = (): Record<MapName, Record<string, MapElement>> =>
  Object.fromEntries(MAP_NAMES.map(n => [n, {}])) as unknown as Record<MapName, Record<string, MapElement>>

/** The whole ruleset for this node. Services are taken in name order: on a clash of keys the first wins. */
export function serviceRuleset (input: RulesetInput): ServiceRuleset {
  const r: ServiceRuleset = {
    frame: {
      masqueradeMark: input.options?.masqueradeMark ?? DEFAULT_MASQUERADE_MARK,
      nodePortAddresses: {
        4: [...new Set(input.nodeAddresses[4] ?? [])].filter(a => familyOf(a) === 4).sort(),
        6: [...new Set(input.nodeAddresses[6] ?? [])].filter(a => familyOf(a) === 6).sort()
      }
    },
    chains: {},
    sets: {},
    maps: emptyMaps()
  }
  const services = [...input.services].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const svc of services) addService(r, svc, input.endpoints.get(svc.name) ?? [], input.node)
  return r
}

function addElement (r: ServiceRuleset, map: MapName, e: MapElement): void {
  const key = mapElementKey(e)
  if (r.maps[map][key] === undefined) r.maps[map][key] = e
}

function addService (r: ServiceRuleset, svc: ServiceSpec, endpoints: readonly Endpoint[], node: string): void {
  for (const f of FAMILIES) {
    const clusterIP = svc.clusterIPs.find(ip => familyOf(ip) === f)
    if (clusterIP === undefined) continue
    // One endpoint per address, in address order, so that the ruleset is the same whatever order etcd gave.
    const byIp = new Map<string, Endpoint>()
    for (const e of endpoints) if (familyOf(e.ip) === f && !byIp.has(e.ip)) byIp.set(e.ip, e)
    const eps = [...byIp.values()].sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0))
    const local = eps.filter(e => e.local || e.node === node)
    const v = familyTag(f)
    for (const p of svc.ports) {
      const nodePort = svc.type === 'NodePort' ? p.nodePort : undefined
      if (eps.length === 0) {
        addElement(r, `no-endpoints-${v}` as MapName, { ip: clusterIP, protocol: p.protocol, port: p.port, verdict: 'reject' })
        if (nodePort !== undefined) addElement(r, `no-endpoint-node-ports-${v}` as MapName, { protocol: p.protocol, port: nodePort, verdict: 'reject' })
        continue
      }
      const timeout = svc.affinityTimeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_S
      const affinity = svc.sessionAffinity === 'ClientIP'
      const epChains = new Map<string, { chain: string, set?: string }>()
      for (const e of eps) {
        const chain = endpointChainName(svc, p, e.ip)
        const rules: Rule[] = [{ kind: 'masqueradeFrom', family: f, saddr: e.ip }]
        let set: string | undefined
        if (affinity) {
          set = affinitySetName(svc, p, e.ip, timeout)
          r.sets[set] = { family: f, timeoutSeconds: timeout }
          rules.push({ kind: 'affinityUpdate', family: f, set })
        }
        rules.push({ kind: 'dnat', family: f, protocol: p.protocol, ip: e.ip, port: p.targetPort })
        r.chains[chain] = rules
        epChains.set(e.ip, set === undefined ? { chain } : { chain, set })
      }
      const choose = (among: readonly Endpoint[]): Rule[] => {
        const picked = among.map(e => epChains.get(e.ip)).filter((x): x is { chain: string, set?: string } => x !== undefined)
        const checks: Rule[] = picked.flatMap(x => (x.set === undefined ? [] : [{ kind: 'affinityCheck', family: f, set: x.set, chain: x.chain } satisfies Rule]))
        return [...checks, { kind: 'randomEndpoint', chains: picked.map(x => x.chain) }]
      }
      const svcChain = serviceChainName(svc, p, f)
      r.chains[svcChain] = choose(eps)
      addElement(r, `cluster-ips-${v}` as MapName, { ip: clusterIP, protocol: p.protocol, port: p.port, verdict: { goto: svcChain } })
      if (nodePort === undefined) continue
      if (svc.externalTrafficPolicy === 'Local') {
        // Only this node's endpoints, and no masquerade: the endpoint sees the client's address.
        if (local.length === 0) {
          addElement(r, `no-endpoint-node-ports-${v}` as MapName, { protocol: p.protocol, port: nodePort, verdict: 'reject' })
          continue
        }
        const ext = nodePortChainName(svc, p, f)
        r.chains[ext] = choose(local)
        addElement(r, `node-ports-${v}` as MapName, { protocol: p.protocol, port: nodePort, verdict: { goto: ext } })
      } else {
        // Any endpoint, maybe on another node: SNAT to this node so that the reply comes back through it.
        const ext = nodePortChainName(svc, p, f)
        r.chains[ext] = [{ kind: 'masquerade' }, { kind: 'goto', chain: svcChain }]
        addElement(r, `node-ports-${v}` as MapName, { protocol: p.protocol, port: nodePort, verdict: { goto: ext } })
      }
    }
  }
}

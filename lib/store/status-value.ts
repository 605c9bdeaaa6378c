// The value a node publishes at status/<node>: what it observes (per-peer handshake and bytes as
// the kernel reports them), what it has applied (its record's generation, the etcd revision of
// the node snapshot) and whether it is degraded. Building it from the daemon's view and parsing it
// back (podmeshctl reads other nodes' status: untrusted input). Pure: no clock read, no I/O.

import type { NodeRecord } from './node-record'
import type { ObservedState } from '../mesh/types'
import { CLAIM_KINDS, type ClaimKind, type Conflict } from '../mesh/claims'

export interface PeerStatus {
  node: string
  transport: 'wireguard' | 'vxlan'
  /** WireGuard public key; '' for a VXLAN peer. */
  publicKey: string
  /** The endpoint the kernel uses ("ip:port"; VXLAN: the FDB destination IP). */
  endpoint: string
  /** Epoch seconds of the last WireGuard handshake; 0 = never (or VXLAN: not applicable). */
  lastHandshake: number
  rxBytes: number
  txBytes: number
  /** The path MTU toward the peer's underlay address as the node knows it (on its link: the link's; absent: not known). */
  pathMtu?: number
}

/** One tunnel device's MTU as the node applied it, and the peer that holds it down. */
export interface DeviceMtuStatus {
  device: string
  transport: 'wireguard' | 'vxlan'
  mtu: number
  /** The largest MTU every current peer's path carries. */
  fits: number
  /** The peer whose endpoint family (or known path) holds the device below the node's own-family MTU. */
  limitedBy?: { node: string, family: 4 | 6 }
  /** The config's mtu, when it sets the device's. */
  override?: number
}

/** A peer behind a path narrower than the links (path-MTU discovery) and its routes' MTU. */
export interface NarrowPathStatus { node: string, pathMtu: number, routeMtu: number }

export interface MtuStatus {
  /** The MTU new pods get (the conflist's). */
  pod: number
  devices: DeviceMtuStatus[]
  /** Peers behind a narrower path, narrowest first (at most MAX_STATUS_NARROW). */
  narrow?: NarrowPathStatus[]
  /** Narrow paths left out of `narrow` to keep the value small. */
  narrowOmitted?: number
}

/** Narrow paths listed in a status value. */
export const MAX_STATUS_NARROW = 32

export interface NodeStatus {
  v: 1
  node: string
  version: string
  /** Generation of the node's own record as last published. */
  generation: number
  /** etcd revision of the node-record snapshot the data plane was last planned from. */
  revision: string
  degraded: boolean
  ready: boolean
  /** ISO 8601 time of this write. */
  updatedAt: string
  /** The latest period during which etcd was unreachable (ISO times; `until` absent while ongoing). */
  lastDegraded?: { since: string, until?: string }
  /** Peers listed: at most MAX_STATUS_PEERS, those needing attention first. */
  peers: PeerStatus[]
  /** How many peers the kernel has in all (absent in values written before it existed). */
  peerCount?: number
  /** Peers left out of `peers` to keep the value small; all of them looked healthy. */
  peersOmitted?: number
  /** Records this node skips because an earlier record holds what they claim (at most MAX_STATUS_CONFLICTS). */
  conflicts?: Conflict[]
  /** Conflicts left out of `conflicts` to keep the value small. */
  conflictsOmitted?: number
  /** etcd mod revision of the network config this node runs (absent in values from before it existed). */
  configRevision?: string
  /** A later config revision seen in etcd and not applied (the node needs a restart to run it). */
  configPending?: string
  /** The tunnel devices' MTUs and the pods' (absent in values from before it existed). */
  mtu?: MtuStatus
  /** The node's service rules (clusters with service ranges; issue #11). */
  services?: ServiceStatus
}

/** What a node's last service-rule pass did: counts when it landed, the error while passes fail. */
export interface ServiceStatus {
  services: number
  endpoints: number
  /** ISO time of the last pass that left the kernel equal to etcd; absent before the first. */
  syncedAt?: string
  /** The last pass failed (etcd or nft): its error, at most MAX_STATUS_ERROR characters. */
  failing?: string
}

/** An error in a status value is cut to this many characters (nft's stderr can be long). */
export const MAX_STATUS_ERROR = 300

/**
 * A status value lists at most this many peers: one etcd value per node, rewritten every few
 * seconds, must stay small at 5,000 nodes (a full list would be ~750 KB, near etcd's 1.5 MiB
 * request limit, and a steady stream of large writes on every node).
 */
export const MAX_STATUS_PEERS = 256
/** A WireGuard handshake older than this needs attention (WireGuard renews every 2 minutes). */
export const HANDSHAKE_STALE_SECONDS = 180
/** Conflicts listed in a status value: enough to name the culprits, bounded against a flood of bad records. */
export const MAX_STATUS_CONFLICTS = 16
/** Above any peer index (a node has at most one WireGuard peer and one FDB entry per record). */
const INDEX_SPAN = 2 ** 21

/** What the daemon knows when it writes: the status fields it decides, and its kernel and etcd view. */
export type StatusInput = Pick<NodeStatus, 'node' | 'version' | 'generation' | 'revision' | 'degraded' | 'ready' | 'lastDegraded' | 'configRevision' | 'configPending' | 'mtu' | 'services'> & {
  observed: ObservedState | undefined
  /** The records. Memoised on identity: hand the same, unmutated object while the records are the same. */
  nodes: Iterable<NodeRecord>
  conflicts?: readonly Conflict[]
  /** Path MTUs the node knows, by peer name (path-MTU discovery). */
  pathMtus?: ReadonlyMap<string, number>
}

/**
 * Who each peer is, from the records: by WireGuard key, by VXLAN MAC, and each name's place in
 * name order. Built once per set of records, not at every write: the status is written every
 * 10 s, the records change rarely, and at 10,000 peers rebuilding these maps and sorting 10,000
 * names each time was most of an idle daemon's status cost.
 */
interface PeerDirectory { self: string, byKey: Map<string, string>, byMac: Map<string, string>, rank: Map<string, number> }
/** Keyed on the records' iterable: the daemon hands the same array until the records change. */
const directories = new WeakMap<object, PeerDirectory>()

function peerDirectory (nodes: Iterable<NodeRecord>, self: string): PeerDirectory {
  const known = directories.get(nodes)
  if (known !== undefined && known.self === self) return known
  const byKey = new Map<string, string>()
  const byMac = new Map<string, string>()
  const names: string[] = []
  for (const n of nodes) {
    if (n.name === self) continue
    names.push(n.name)
    if (n.publicKey !== undefined) byKey.set(n.publicKey, n.name)
    if (n.vxlan !== undefined) byMac.set(n.vxlan.mac, n.name)
  }
  names.sort((x, y) => x < y ? -1 : x > y ? 1 : 0)
  const rank = new Map(names.map((name, i) => [name, i]))
  const dir = { self, byKey, byMac, rank }
  directories.set(nodes, dir)
  return dir
}

interface PeerNames {
  dir: PeerDirectory
  fdb: readonly FdbRow[]
  names: string[]
  /** ≥ 0: index into the WireGuard peers; < 0: -(index into fdb) - 1. */
  refs: number[]
  /** Indices into `names` in name order (ties in index order): sorted once per kernel read, not per write. */
  order: Uint32Array
}
type FdbRow = NonNullable<ObservedState['vxlan']>['fdb'][number]
type WgPeerRow = NonNullable<ObservedState['wireguard']>['peers'][number]
/** One empty list for a node without a device, so that the memo below still hits. */
const NONE: readonly never[] = []
/** Keyed on the kernel read's peer array: an unchanged read keeps its array, and the names with it. */
const peerNameMemo = new WeakMap<object, PeerNames>()

/** Each kernel peer's node name (unknown WireGuard peers as '?'; foreign FDB entries left out). */
function peerNames (wgPeers: readonly WgPeerRow[], fdb: readonly FdbRow[], dir: PeerDirectory): PeerNames {
  const known = peerNameMemo.get(wgPeers)
  if (known !== undefined && known.dir === dir && known.fdb === fdb) return known
  const names: string[] = []
  const refs: number[] = []
  for (let i = 0; i < wgPeers.length; i++) { names.push(dir.byKey.get((wgPeers[i] as WgPeerRow).publicKey) ?? '?'); refs.push(i) }
  for (let j = 0; j < fdb.length; j++) {
    const f = fdb[j] as FdbRow
    const node = dir.byMac.get(f.mac)
    // The all-zero MAC and other foreign FDB entries are not peers.
    if (node === undefined) continue
    names.push(node)
    refs.push(-j - 1)
  }
  // Name order as a string sort gives it: a named peer's key is odd (2·rank + 1); unknown peers
  // ('?') share the even key just below the first name after '?'. Each is packed with its index
  // into one number for a native numeric sort (ties in index order).
  let unknownKey = 0
  if (names.includes('?')) for (const name of dir.rank.keys()) if (name < '?') unknownKey += 2
  const keys = Float64Array.from(names, (name, k) => (name === '?' ? unknownKey : 2 * (dir.rank.get(name) as number) + 1) * INDEX_SPAN + k)
  keys.sort()
  const order = Uint32Array.from(keys, key => key % INDEX_SPAN)
  const memo = { dir, fdb, names, refs, order }
  peerNameMemo.set(wgPeers, memo)
  return memo
}

/** The status value for `now`; peers are named from the records (unknown kernel peers as "?"). */
export function buildStatus (input: StatusInput, now: Date): NodeStatus {
  const dir = peerDirectory(input.nodes, input.node)
  // Peers are ranked by index, and a PeerStatus is made only for the (at most 256) listed: not
  // one object per peer per write (GC was most of an idle daemon's CPU at 10,000 peers).
  const wgPeers: readonly WgPeerRow[] = input.observed?.wireguard?.peers ?? NONE
  const fdb: readonly FdbRow[] = input.observed?.vxlan?.fdb ?? NONE
  const { names, refs, order } = peerNames(wgPeers, fdb, dir)
  const nowS = now.getTime() / 1000
  const attention = (k: number): boolean => {
    if (names[k] === '?') return true
    const r = refs[k] as number
    if (r < 0) return false
    const h = (wgPeers[r] as (typeof wgPeers)[number]).lastHandshake
    return h === 0 || nowS - h > HANDSHAKE_STALE_SECONDS
  }
  // Those needing attention first, then healthy ones while there is room, listed in name order:
  // positions in `order` are picked in one pass and stay sorted.
  let chosen: number[]
  if (order.length <= MAX_STATUS_PEERS) {
    chosen = Array.from(order)
  } else {
    const needs: number[] = []
    const fine: number[] = []
    for (let i = 0; i < order.length && needs.length < MAX_STATUS_PEERS; i++) {
      if (attention(order[i] as number)) needs.push(i)
      else if (fine.length < MAX_STATUS_PEERS) fine.push(i)
    }
    const positions = needs.concat(fine.slice(0, MAX_STATUS_PEERS - needs.length)).sort((a, b) => a - b)
    chosen = positions.map(i => order[i] as number)
  }
  const listed = chosen.map((k): PeerStatus => {
    const node = names[k] as string
    const r = refs[k] as number
    const w = r >= 0 ? wgPeers[r] : undefined
    const p: PeerStatus = w !== undefined
      ? { node, transport: 'wireguard', publicKey: w.publicKey, endpoint: w.endpoint, lastHandshake: w.lastHandshake, rxBytes: w.rxBytes, txBytes: w.txBytes }
      : { node, transport: 'vxlan', publicKey: '', endpoint: fdb[-r - 1]?.dst ?? '', lastHandshake: 0, rxBytes: 0, txBytes: 0 }
    const pathMtu = input.pathMtus?.get(node)
    if (pathMtu !== undefined) p.pathMtu = pathMtu
    return p
  })
  const omitted = names.length - listed.length
  const conflicts = [...input.conflicts ?? []].sort((a, b) => a.node < b.node ? -1 : a.node > b.node ? 1 : a.what < b.what ? -1 : a.what > b.what ? 1 : 0)
  return {
    v: 1,
    node: input.node,
    version: input.version,
    generation: input.generation,
    revision: input.revision,
    degraded: input.degraded,
    ready: input.ready,
    updatedAt: now.toISOString(),
    ...(input.lastDegraded !== undefined ? { lastDegraded: input.lastDegraded } : {}),
    peers: listed,
    peerCount: names.length,
    ...(omitted > 0 ? { peersOmitted: omitted } : {}),
    ...(conflicts.length > 0 ? { conflicts: conflicts.slice(0, MAX_STATUS_CONFLICTS) } : {}),
    ...(conflicts.length > MAX_STATUS_CONFLICTS ? { conflictsOmitted: conflicts.length - MAX_STATUS_CONFLICTS } : {}),
    ...(input.configRevision !== undefined ? { configRevision: input.configRevision } : {}),
    ...(input.configPending !== undefined ? { configPending: input.configPending } : {}),
    ...(input.mtu !== undefined ? { mtu: input.mtu } : {}),
    ...(input.services !== undefined ? { services: serviceStatusOf(input.services) } : {})
  }
}

const serviceStatusOf = (x: ServiceStatus): ServiceStatus => ({
  services: x.services,
  endpoints: x.endpoints,
  ...(x.syncedAt !== undefined ? { syncedAt: x.syncedAt } : {}),
  ...(x.failing !== undefined ? { failing: x.failing.slice(0, MAX_STATUS_ERROR) } : {})
})

export class StatusValueError extends Error {
  readonly code = 'ESTATUSVALUE'
  readonly key: string
  constructor (key: string, message: string, options?: { cause?: unknown }) {
    super(`${key}: ${message}`, options)
    this.name = 'StatusValueError'
    this.key = key
  }
}
export const isStatusValueError = (e: unknown): e is StatusValueError => e instanceof StatusValueError

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0

/** Validates a status value read from etcd (a bad one is reported, never trusted). */
export function parseStatus (key: string, text: string): NodeStatus {
  let v: unknown
  try { v = JSON.parse(text) } catch (e) { throw new StatusValueError(key, 'not JSON', { cause: e }) }
  if (!isObj(v) || v.v !== 1) throw new StatusValueError(key, 'not a v1 status object')
  const bad = (field: string): never => { throw new StatusValueError(key, `field "${field}" missing or malformed`) }
  if (typeof v.node !== 'string') bad('node')
  if (typeof v.version !== 'string') bad('version')
  if (!num(v.generation)) bad('generation')
  if (typeof v.revision !== 'string') bad('revision')
  if (typeof v.degraded !== 'boolean') bad('degraded')
  if (typeof v.ready !== 'boolean') bad('ready')
  if (typeof v.updatedAt !== 'string' || Number.isNaN(Date.parse(v.updatedAt))) bad('updatedAt')
  if (!Array.isArray(v.peers)) bad('peers')
  const peers = (v.peers as unknown[]).map((p, i): PeerStatus => {
    if (!isObj(p) || typeof p.node !== 'string' || (p.transport !== 'wireguard' && p.transport !== 'vxlan') ||
      typeof p.publicKey !== 'string' || typeof p.endpoint !== 'string' || !num(p.lastHandshake) || !num(p.rxBytes) || !num(p.txBytes)) {
      return bad(`peers[${i}]`)
    }
    if (p.pathMtu !== undefined && !mtuNum(p.pathMtu)) return bad(`peers[${i}]`)
    return { node: p.node, transport: p.transport, publicKey: p.publicKey, endpoint: p.endpoint, lastHandshake: p.lastHandshake, rxBytes: p.rxBytes, txBytes: p.txBytes, ...(p.pathMtu !== undefined ? { pathMtu: p.pathMtu as number } : {}) }
  })
  if (v.peerCount !== undefined && !num(v.peerCount)) bad('peerCount')
  if (v.peersOmitted !== undefined && !num(v.peersOmitted)) bad('peersOmitted')
  if (v.conflicts !== undefined && !Array.isArray(v.conflicts)) bad('conflicts')
  const conflicts = ((v.conflicts ?? []) as unknown[]).map((c, i): Conflict => {
    if (!isObj(c) || typeof c.node !== 'string' || typeof c.holder !== 'string' || typeof c.value !== 'string' || !CLAIM_KINDS.includes(c.what as ClaimKind)) {
      return bad(`conflicts[${i}]`)
    }
    return { node: c.node, holder: c.holder, what: c.what as ClaimKind, value: c.value }
  })
  if (v.conflictsOmitted !== undefined && !num(v.conflictsOmitted)) bad('conflictsOmitted')
  const revisionText = (x: unknown): boolean => typeof x === 'string' && /^\d{1,20}$/.test(x)
  if (v.configRevision !== undefined && !revisionText(v.configRevision)) bad('configRevision')
  if (v.configPending !== undefined && !revisionText(v.configPending)) bad('configPending')
  const mtu = v.mtu === undefined ? undefined : parseMtu(v.mtu, bad)
  const services = v.services === undefined ? undefined : parseServiceStatus(v.services, bad)
  const ld = v.lastDegraded
  let lastDegraded: NodeStatus['lastDegraded']
  if (ld !== undefined) {
    if (!isObj(ld) || typeof ld.since !== 'string' || (ld.until !== undefined && typeof ld.until !== 'string')) bad('lastDegraded')
    const l = ld as { since: string, until?: string }
    lastDegraded = { since: l.since, ...(l.until !== undefined ? { until: l.until } : {}) }
  }
  return {
    v: 1,
    node: v.node as string,
    version: v.version as string,
    generation: v.generation as number,
    revision: v.revision as string,
    degraded: v.degraded as boolean,
    ready: v.ready as boolean,
    updatedAt: v.updatedAt as string,
    ...(lastDegraded !== undefined ? { lastDegraded } : {}),
    peers,
    ...(v.peerCount !== undefined ? { peerCount: v.peerCount as number } : {}),
    ...(v.peersOmitted !== undefined ? { peersOmitted: v.peersOmitted as number } : {}),
    ...(v.conflicts !== undefined ? { conflicts } : {}),
    ...(v.conflictsOmitted !== undefined ? { conflictsOmitted: v.conflictsOmitted as number } : {}),
    ...(v.configRevision !== undefined ? { configRevision: v.configRevision as string } : {}),
    ...(v.configPending !== undefined ? { configPending: v.configPending as string } : {}),
    ...(mtu !== undefined ? { mtu } : {}),
    ...(services !== undefined ? { services } : {})
  }
}

function parseServiceStatus (x: unknown, bad: (field: string) => never): ServiceStatus {
  const count = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0
  if (!isObj(x) || !count(x.services) || !count(x.endpoints)) return bad('services')
  if (x.syncedAt !== undefined && (typeof x.syncedAt !== 'string' || Number.isNaN(Date.parse(x.syncedAt)))) return bad('services.syncedAt')
  if (x.failing !== undefined && (typeof x.failing !== 'string' || x.failing.length > MAX_STATUS_ERROR)) return bad('services.failing')
  return serviceStatusOf(x as unknown as ServiceStatus)
}

const mtuNum = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 68 && x <= 65535

function parseMtu (m: unknown, bad: (field: string) => never): MtuStatus {
  if (!isObj(m) || !mtuNum(m.pod) || !Array.isArray(m.devices)) return bad('mtu')
  const devices = (m.devices as unknown[]).map((d, i): DeviceMtuStatus => {
    const field = `mtu.devices[${i}]`
    if (!isObj(d) || typeof d.device !== 'string' || (d.transport !== 'wireguard' && d.transport !== 'vxlan') || !mtuNum(d.mtu) || !mtuNum(d.fits)) return bad(field)
    if (d.override !== undefined && !mtuNum(d.override)) return bad(field)
    const l = d.limitedBy
    if (l !== undefined && (!isObj(l) || typeof l.node !== 'string' || (l.family !== 4 && l.family !== 6))) return bad(field)
    return {
      device: d.device,
      transport: d.transport,
      mtu: d.mtu,
      fits: d.fits,
      ...(l !== undefined ? { limitedBy: { node: (l as { node: string }).node, family: (l as { family: 4 | 6 }).family } } : {}),
      ...(d.override !== undefined ? { override: d.override as number } : {})
    }
  })
  let narrow: NarrowPathStatus[] | undefined
  if (m.narrow !== undefined) {
    if (!Array.isArray(m.narrow) || m.narrow.length > MAX_STATUS_NARROW) return bad('mtu.narrow')
    narrow = (m.narrow as unknown[]).map((n, i): NarrowPathStatus => {
      if (!isObj(n) || typeof n.node !== 'string' || !mtuNum(n.pathMtu) || !mtuNum(n.routeMtu)) return bad(`mtu.narrow[${i}]`)
      return { node: n.node, pathMtu: n.pathMtu, routeMtu: n.routeMtu }
    })
  }
  if (m.narrowOmitted !== undefined && !(typeof m.narrowOmitted === 'number' && Number.isInteger(m.narrowOmitted) && m.narrowOmitted > 0)) return bad('mtu.narrowOmitted')
  return {
    pod: m.pod,
    devices,
    ...(narrow !== undefined ? { narrow } : {}),
    ...(m.narrowOmitted !== undefined ? { narrowOmitted: m.narrowOmitted as number } : {})
  }
}

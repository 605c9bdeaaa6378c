// The plan: the smallest set of kernel changes that turns the observed state into the desired
// one. Pure. An unchanged peer is never in the plan, so its handshake and counters survive
// other peers joining and leaving; an empty plan means the apply step touches nothing.

import type {
  DesiredState, ObservedState, Plan, Route, WireguardPlan, VxlanPlan, Peer,
  ObservedWireguard, ObservedVxlan, WireguardDevice, VxlanDevice
} from './types'
import { canonicalEndpoint, isEndpointError } from '../store/endpoint'

export const routeKey = (r: Route): string => `${r.family}|${r.dst}|${r.dev}|${r.via ?? ''}|${r.src ?? ''}|${r.mtu ?? ''}`

function diffBy<T> (want: readonly T[], have: readonly T[], key: (x: T) => string): { add: T[], del: T[] } {
  const w = new Map(want.map(x => [key(x), x]))
  const h = new Map(have.map(x => [key(x), x]))
  return {
    add: [...w].filter(([k]) => !h.has(k)).map(([, x]) => x),
    del: [...h].filter(([k]) => !w.has(k)).map(([, x]) => x)
  }
}

function sameList (a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false
  // Both sides are normally sorted already: only an unequal pair pays for sorting.
  if (a.every((x, i) => x === b[i])) return true
  const sb = [...b].sort()
  return [...a].sort().every((x, i) => x === sb[i])
}

// Canonicalising parses the address; equal texts (the common case) skip it. The kernel's side is
// whatever `wg show dump` printed, which may be no form a node record can carry (a link-local
// endpoint learned by roaming prints with its scope, "[fe80::1%eth0]:51820", from the kernel
// module; wireguard-go drops the scope and prints "[fe80::1]:51820"): such a text is
// simply not our endpoint, so the peer is re-set — never an exception that stops the pass.
function sameEndpoint (want: string, have: string): boolean {
  if (want === have) return true
  try {
    return canonicalEndpoint(want) === canonicalEndpoint(have)
  } catch (e) {
    if (isEndpointError(e)) return false
    throw e
  }
}

function peerChanged (want: Peer, have: ObservedWireguard['peers'][number]): boolean {
  return !sameEndpoint(want.endpoint, have.endpoint) ||
    !sameList(want.allowedIps, have.allowedIps) ||
    want.persistentKeepalive !== have.persistentKeepalive
}

export function planWireguard (want: WireguardDevice, have: ObservedWireguard | undefined): WireguardPlan {
  const create = have === undefined
  const observedPeers = have?.peers ?? []
  const byKey = new Map(observedPeers.map(p => [p.publicKey, p]))
  const wanted = new Set(want.peers.map(p => p.publicKey))
  const addrs = diffBy(want.addresses, have?.addresses ?? [], a => a)
  const mtu = have?.mtu
  return {
    ifname: want.ifname,
    create,
    configure: create || have.publicKey !== want.publicKey || have.listenPort !== want.listenPort,
    listenPort: want.listenPort,
    ...(mtu !== want.mtu ? { setMtu: want.mtu } : {}),
    addAddresses: addrs.add,
    delAddresses: addrs.del,
    upsertPeers: want.peers.filter(p => {
      const h = byKey.get(p.publicKey)
      return h === undefined || peerChanged(p, h)
    }),
    removePeers: observedPeers.filter(p => !wanted.has(p.publicKey)).map(p => p.publicKey)
  }
}

export function planVxlan (want: VxlanDevice, have: ObservedVxlan | undefined): VxlanPlan {
  const create = have === undefined
  const recreate = !create && (have.vni !== want.vni || have.port !== want.port || have.localIp !== want.localIp || have.mac !== want.mac)
  // After (re)creation the device is empty: everything desired is added.
  const base = create || recreate ? undefined : have
  const addrs = diffBy(want.addresses, base?.addresses ?? [], a => a)
  const fdbWant = want.remotes.map(r => ({ mac: r.mac, dst: r.underlayIp }))
  const fdb = diffBy(fdbWant, base?.fdb ?? [], f => `${f.mac}|${f.dst}`)
  const fdbAddedMacs = new Set(fdb.add.map(f => f.mac))
  const neighWant = want.remotes.flatMap(r => r.tunnelIps.map(ip => ({ ip, mac: r.mac })))
  const neigh = diffBy(neighWant, base?.neighbors ?? [], n => `${n.ip}|${n.mac}`)
  return {
    ifname: want.ifname,
    create,
    recreate,
    vni: want.vni,
    port: want.port,
    mac: want.mac,
    localIp: want.localIp,
    ...(base?.mtu !== want.mtu ? { setMtu: want.mtu } : {}),
    addAddresses: addrs.add,
    delAddresses: addrs.del,
    addFdb: fdb.add,
    // An entry whose MAC gets a new remote (the node's underlay moved) is replaced by the add,
    // also while nothing is pruned: it is an update of a live peer, not a removal.
    delFdb: fdb.del.filter(f => !fdbAddedMacs.has(f.mac)),
    addNeighbors: neigh.add,
    // A neighbour being replaced (same IP, new MAC) is overwritten by the add; deleting it would race.
    delNeighbors: neigh.del.filter(n => !neigh.add.some(a => a.ip === n.ip))
  }
}

export interface PlanOptions {
  /**
   * When false (etcd unreachable, or not yet fully synced after a start) nothing is removed:
   * stale peers, routes, FDB entries and devices stay until a full sync says they are stale.
   */
  prune: boolean
}

export function plan (want: DesiredState, have: ObservedState, opts: PlanOptions): Plan {
  const p: Plan = { deleteDevices: [], addRoutes: [], delRoutes: [] }
  if (want.wireguard !== undefined) p.wireguard = planWireguard(want.wireguard, have.wireguard)
  else if (have.wireguard !== undefined) p.deleteDevices.push(have.wireguard.ifname)
  if (want.vxlan !== undefined) p.vxlan = planVxlan(want.vxlan, have.vxlan)
  else if (have.vxlan !== undefined) p.deleteDevices.push(have.vxlan.ifname)

  // A route whose device is being (re)created vanished with the old device: it must be added again.
  const fresh = new Set<string>()
  if (p.wireguard?.create === true) fresh.add(p.wireguard.ifname)
  if (p.vxlan?.create === true || p.vxlan?.recreate === true) fresh.add(p.vxlan.ifname)
  const surviving = have.routes.filter(r => !fresh.has(r.dev) && !p.deleteDevices.includes(r.dev))
  const routes = diffBy(want.routes, surviving, routeKey)
  p.addRoutes = routes.add
  p.delRoutes = routes.del

  if (!opts.prune) {
    p.deleteDevices = []
    p.delRoutes = []
    if (p.wireguard !== undefined) p.wireguard.removePeers = []
    if (p.vxlan !== undefined) {
      p.vxlan.delFdb = []
      p.vxlan.delNeighbors = []
    }
  }
  return p
}

/** One line per change, for logs and `podmeshctl diff` (stable wording: tests and operators read it). */
export function describePlan (p: Plan): string[] {
  const out: string[] = []
  for (const d of p.deleteDevices) out.push(`device ${d}: delete`)
  const w = p.wireguard
  if (w !== undefined) {
    if (w.create) out.push(`device ${w.ifname}: create`)
    else if (w.configure) out.push(`device ${w.ifname}: set key and listen port ${w.listenPort}`)
    if (w.setMtu !== undefined && !w.create) out.push(`device ${w.ifname}: mtu ${w.setMtu}`)
    for (const a of w.addAddresses) out.push(`device ${w.ifname}: add address ${a}`)
    for (const a of w.delAddresses) out.push(`device ${w.ifname}: remove address ${a}`)
    for (const peer of w.upsertPeers) out.push(`peer ${peer.node} (${peer.publicKey.slice(0, 8)}…): set endpoint ${peer.endpoint} allowed-ips ${peer.allowedIps.join(',')}`)
    for (const k of w.removePeers) out.push(`peer ${k.slice(0, 8)}…: remove`)
  }
  const v = p.vxlan
  if (v !== undefined) {
    if (v.create) out.push(`device ${v.ifname}: create vxlan vni ${v.vni} port ${v.port}`)
    if (v.recreate) out.push(`device ${v.ifname}: re-create vxlan vni ${v.vni} port ${v.port} local ${v.localIp}`)
    if (v.setMtu !== undefined && !v.create && !v.recreate) out.push(`device ${v.ifname}: mtu ${v.setMtu}`)
    for (const a of v.addAddresses) out.push(`device ${v.ifname}: add address ${a}`)
    for (const a of v.delAddresses) out.push(`device ${v.ifname}: remove address ${a}`)
    for (const f of v.addFdb) out.push(`fdb ${f.mac} dst ${f.dst}: add`)
    for (const f of v.delFdb) out.push(`fdb ${f.mac} dst ${f.dst}: remove`)
    for (const n of v.addNeighbors) out.push(`neighbour ${n.ip} lladdr ${n.mac}: add`)
    for (const n of v.delNeighbors) out.push(`neighbour ${n.ip} lladdr ${n.mac}: remove`)
  }
  const fmt = (r: Route): string => `${r.dst} dev ${r.dev}${r.via !== undefined ? ` via ${r.via} onlink` : ''}${r.src !== undefined ? ` src ${r.src}` : ''}${r.mtu !== undefined ? ` mtu ${r.mtu}` : ''}`
  for (const r of p.delRoutes) out.push(`route ${fmt(r)}: remove`)
  for (const r of p.addRoutes) out.push(`route ${fmt(r)}: add`)
  return out
}

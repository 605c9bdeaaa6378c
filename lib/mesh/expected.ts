// What the kernel holds after a plan was applied successfully: the observed state with the plan
// folded in. Pure. Watch-triggered passes plan against it instead of re-reading the whole
// kernel (a `wg show dump` and a route dump of thousands of entries), so one node joining among
// thousands costs O(that node). The periodic resync still reads the kernel and repairs drift.

import type { DesiredState, FdbEntry, NeighborEntry, ObservedState, Plan, Route } from './types'
import { routeKey } from './plan'

export function afterApply (o: ObservedState, p: Plan, d: DesiredState): ObservedState {
  const gone = new Set(p.deleteDevices)
  const out: ObservedState = { routes: [] }

  const w = p.wireguard
  if (w !== undefined) {
    const base = w.create || o.wireguard === undefined
      ? { ifname: w.ifname, publicKey: '', listenPort: w.listenPort, mtu: 0, addresses: [] as string[], peers: [] as NonNullable<ObservedState['wireguard']>['peers'] }
      : o.wireguard
    const removed = new Set(w.removePeers)
    const upserted = new Map(w.upsertPeers.map(peer => [peer.publicKey, peer]))
    // No peer change (every quiet pass): the peers are the observed ones, not a copy of 10,000.
    const unchanged = removed.size === 0 && upserted.size === 0
    const kept = unchanged ? base.peers : base.peers.filter(peer => !removed.has(peer.publicKey) && !upserted.has(peer.publicKey))
    const prior = unchanged ? new Map<string, (typeof base.peers)[number]>() : new Map(base.peers.map(peer => [peer.publicKey, peer]))
    out.wireguard = {
      ifname: w.ifname,
      // `configure` writes the node's private key: the device then has the desired public key.
      publicKey: w.configure ? d.wireguard?.publicKey ?? base.publicKey : base.publicKey,
      listenPort: w.listenPort,
      mtu: w.setMtu ?? base.mtu,
      addresses: [...base.addresses.filter(a => !w.delAddresses.includes(a)), ...w.addAddresses],
      peers: unchanged ? kept : [
        ...kept,
        ...w.upsertPeers.map(({ node: _node, ...peer }) => ({
          ...peer,
          lastHandshake: prior.get(peer.publicKey)?.lastHandshake ?? 0,
          rxBytes: prior.get(peer.publicKey)?.rxBytes ?? 0,
          txBytes: prior.get(peer.publicKey)?.txBytes ?? 0
        }))
      ]
    }
  } else if (o.wireguard !== undefined && !gone.has(o.wireguard.ifname)) {
    out.wireguard = o.wireguard
  }

  const v = p.vxlan
  if (v !== undefined) {
    const fresh = v.create || v.recreate || o.vxlan === undefined
    const base = fresh ? { addresses: [] as string[], fdb: [] as FdbEntry[], neighbors: [] as NeighborEntry[], mtu: 0 } : o.vxlan as NonNullable<ObservedState['vxlan']>
    const fdbKey = (f: FdbEntry): string => `${f.mac}|${f.dst}`
    const delFdb = new Set(v.delFdb.map(fdbKey))
    const addedMacs = new Set(v.addFdb.map(f => f.mac))
    const addedIps = new Set(v.addNeighbors.map(n => n.ip))
    const delNeigh = new Set(v.delNeighbors.map(n => n.ip))
    out.vxlan = {
      ifname: v.ifname,
      vni: v.vni,
      port: v.port,
      mtu: v.setMtu ?? base.mtu,
      mac: v.mac,
      localIp: v.localIp,
      addresses: [...base.addresses.filter(a => !v.delAddresses.includes(a)), ...v.addAddresses],
      // An added FDB entry replaces any entry for the same MAC (the kernel's REPLACE semantics).
      fdb: [...base.fdb.filter(f => !delFdb.has(fdbKey(f)) && !addedMacs.has(f.mac)), ...v.addFdb],
      // An added neighbour replaces any entry for the same IP (the kernel's REPLACE semantics).
      neighbors: [...base.neighbors.filter(n => !delNeigh.has(n.ip) && !addedIps.has(n.ip)), ...v.addNeighbors]
    }
  } else if (o.vxlan !== undefined && !gone.has(o.vxlan.ifname)) {
    out.vxlan = o.vxlan
  }

  // Routes on a deleted or (re)created device went with it.
  const reset = new Set<string>(p.deleteDevices)
  if (w?.create === true) reset.add(w.ifname)
  if (v?.create === true || v?.recreate === true) reset.add(v.ifname)
  if (reset.size === 0 && p.delRoutes.length === 0 && p.addRoutes.length === 0) {
    // No route change: the observed routes as they are (a key per route per pass was garbage).
    out.routes = o.routes
    return out
  }
  const del = new Set(p.delRoutes.map(routeKey))
  const add = new Set(p.addRoutes.map(routeKey))
  const keep = (r: Route): boolean => !reset.has(r.dev) && !del.has(routeKey(r)) && !add.has(routeKey(r))
  out.routes = [...o.routes.filter(keep), ...p.addRoutes]
  return out
}

// The data of the reconcile loop: what the kernel should hold (DesiredState), what it holds
// (ObservedState), and the smallest set of changes between them (Plan). podmesh's own plain
// types: no netlink or wg structures leak in here. All CIDRs and IPs are canonical text.

import type { Family } from '../ipam/cidr'

/** A route podmesh owns (tagged with its route protocol in the kernel). */
export interface Route {
  family: Family
  /** Destination prefix, canonical CIDR. */
  dst: string
  /** Output device name. */
  dev: string
  /** Preferred source address (the node's own pod-subnet address), so host traffic is never NATed. */
  src?: string
  /** Next hop reached `onlink` (VXLAN: the remote node's tunnel address). */
  via?: string
  /** A smaller MTU than the device's, for the peer behind a narrower path (path-MTU discovery). */
  mtu?: number
}

export interface Peer {
  /** Node name the peer belongs to (for logs and status; WireGuard itself keys on publicKey). */
  node: string
  publicKey: string
  /** "ip:port" / "[ip6]:port". */
  endpoint: string
  /** Canonical CIDRs, sorted. */
  allowedIps: string[]
  /** Seconds, 0 = off. */
  persistentKeepalive: number
}

export interface WireguardDevice {
  ifname: string
  /** Public key of the device's private key (a device holding another key gets reconfigured). */
  publicKey: string
  listenPort: number
  mtu: number
  /** Addresses on the device, CIDR form ("10.244.1.0/32"). */
  addresses: string[]
  peers: Peer[]
}

/** A remote VTEP: where the remote node's tunnel MAC lives on the underlay. */
export interface VxlanRemote {
  node: string
  /** Remote VTEP MAC (lower-case aa:bb:..). */
  mac: string
  /** Remote node's underlay IP (FDB destination). */
  underlayIp: string
  /** Remote node's tunnel addresses (neighbour entries: one per pod family). */
  tunnelIps: string[]
}

/** A VXLAN FDB entry: remote VTEP MAC → remote underlay IP. */
export interface FdbEntry { mac: string, dst: string }
/** A permanent neighbour entry: remote tunnel IP → remote VTEP MAC. */
export interface NeighborEntry { ip: string, mac: string }

export interface VxlanDevice {
  ifname: string
  vni: number
  port: number
  mtu: number
  mac: string
  /** The local underlay IP the device sends from; its family picks the underlay family. */
  localIp: string
  addresses: string[]
  remotes: VxlanRemote[]
}

export interface DesiredState {
  wireguard?: WireguardDevice
  vxlan?: VxlanDevice
  routes: Route[]
}

export interface ObservedWireguard {
  ifname: string
  /** Public key derived by `wg` from the device's private key; '' when none is set. */
  publicKey: string
  listenPort: number
  mtu: number
  addresses: string[]
  /** Peers as the kernel reports them (node is '' — the kernel does not know names). */
  peers: Array<Omit<Peer, 'node'> & { lastHandshake: number, rxBytes: number, txBytes: number }>
}

export interface ObservedVxlan {
  ifname: string
  vni: number
  port: number
  mtu: number
  mac: string
  localIp: string
  addresses: string[]
  fdb: FdbEntry[]
  /** Permanent entries only. */
  neighbors: NeighborEntry[]
}

export interface ObservedState {
  /** Absent when the interface does not exist. */
  wireguard?: ObservedWireguard
  vxlan?: ObservedVxlan
  /** Only routes carrying podmesh's route protocol. */
  routes: Route[]
}

export interface WireguardPlan {
  ifname: string
  /** Create (or re-create) the device; the rest of the plan then applies to an empty device. */
  create: boolean
  /** Set the private key and listen port (on create, or when the port drifted). */
  configure: boolean
  listenPort: number
  setMtu?: number
  addAddresses: string[]
  delAddresses: string[]
  /** New peers and peers whose endpoint, allowed IPs or keepalive changed. */
  upsertPeers: Peer[]
  /** Public keys of peers to remove. */
  removePeers: string[]
}

export interface VxlanPlan {
  ifname: string
  create: boolean
  /** Delete and re-create: VNI, port or local IP changed (the kernel cannot change these in place). */
  recreate: boolean
  vni: number
  port: number
  mac: string
  localIp: string
  setMtu?: number
  addAddresses: string[]
  delAddresses: string[]
  addFdb: FdbEntry[]
  delFdb: FdbEntry[]
  addNeighbors: NeighborEntry[]
  delNeighbors: NeighborEntry[]
}

export interface Plan {
  wireguard?: WireguardPlan
  vxlan?: VxlanPlan
  /** Device names to delete (a backend no longer used). */
  deleteDevices: string[]
  addRoutes: Route[]
  delRoutes: Route[]
}

export const planIsEmpty = (p: Plan): boolean =>
  p.deleteDevices.length === 0 && p.addRoutes.length === 0 && p.delRoutes.length === 0 &&
  (p.wireguard === undefined || (!p.wireguard.create && !p.wireguard.configure && p.wireguard.setMtu === undefined &&
    p.wireguard.addAddresses.length === 0 && p.wireguard.delAddresses.length === 0 &&
    p.wireguard.upsertPeers.length === 0 && p.wireguard.removePeers.length === 0)) &&
  (p.vxlan === undefined || (!p.vxlan.create && !p.vxlan.recreate && p.vxlan.setMtu === undefined &&
    p.vxlan.addAddresses.length === 0 && p.vxlan.delAddresses.length === 0 &&
    p.vxlan.addFdb.length === 0 && p.vxlan.delFdb.length === 0 &&
    p.vxlan.addNeighbors.length === 0 && p.vxlan.delNeighbors.length === 0))

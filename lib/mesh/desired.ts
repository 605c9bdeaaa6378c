// The desired state of one node's data plane: a pure function of the network config, every
// node record, and this node's identity. No I/O and no clock: the daemon, podmeshctl and the
// benchmarks all run the same function.

import type { NetworkConfig } from '../config/network'
import type { NodeRecord } from '../store/node-record'
import { formatIp, parseCidr, parseIp, overlaps, type Family } from '../ipam/cidr'
import type { DesiredState, Peer, Route, VxlanRemote, WireguardDevice, VxlanDevice } from './types'
import { parseEndpoint } from '../store/endpoint'
import { deviceMtu, narrowRouteMtu, podMtu, type DeviceMtu, type PeerPath } from './mtu'
import { podGateways } from './cni-config'

/** What this node knows of itself that is not in etcd's records (or must not be trusted from them). */
export interface LocalIdentity {
  name: string
  podCIDRs: readonly string[]
  /** Underlay IP the tunnels use (the endpoint's IP). */
  underlayIp: string
  publicKey: string
  /** MTU of the underlay interface: each tunnel device's MTU is derived from it and from its peers (lib/mesh/mtu.ts). */
  underlayMtu: number
  /** Path MTU toward a peer's underlay address, by node name, where one narrower than the interface is known. */
  pathMtus?: ReadonlyMap<string, number>
  location?: string
  vxlanMac?: string
  devices: { wireguard: string, vxlan: string }
}

export type Transport = 'wireguard' | 'vxlan'

export interface SkippedNode { node: string, reason: string }

export interface Desired {
  state: DesiredState
  /** Per remote node, the tunnel chosen for it. */
  transports: ReadonlyMap<string, Transport>
  /** Remote nodes that get no peer and no route, and why (logged by the daemon). */
  skipped: SkippedNode[]
  /** Each device's MTU and what limits it; `pod` is what the pods' interfaces get (the smallest). */
  mtu: MtuPlan
}

export interface MtuPlan {
  wireguard?: DeviceMtu
  vxlan?: DeviceMtu
  pod: number
  /** Peers behind a path narrower than their device's MTU needs, and the MTU their routes got (by node name). */
  narrow?: NarrowPath[]
}

export interface NarrowPath { node: string, pathMtu: number, routeMtu: number }

/** The node's own address on its tunnels: the network address of each pod subnet (as flannel does). */
export function tunnelAddress (podCIDR: string): { family: Family, ip: string } {
  const c = parseCidr(podCIDR)
  return { family: c.family, ip: formatIp(c.family, c.addr) }
}

const hostPrefix = (f: Family): number => (f === 4 ? 32 : 128)

interface RecordFacts {
  cidrs: Array<ReturnType<typeof parseCidr>>
  endpoint: ReturnType<typeof parseEndpoint>
  tunnel: Array<{ family: Family, ip: string }>
}

/**
 * What each record parses to, computed once per record object: the watcher hands out the same
 * immutable record objects until a record changes, so one join among thousands re-parses one.
 */
const factsCache = new WeakMap<NodeRecord, RecordFacts>()
function factsOf (n: NodeRecord): RecordFacts {
  let f = factsCache.get(n)
  if (f === undefined) {
    f = { cidrs: n.podCIDRs.map(c => parseCidr(c)), endpoint: parseEndpoint(n.endpoint), tunnel: n.podCIDRs.map(tunnelAddress) }
    factsCache.set(n, f)
  }
  return f
}

/** Which tunnel carries traffic to `remote` (pure policy; mixed mode is per location). */
export function transportFor (config: NetworkConfig, self: LocalIdentity, remote: NodeRecord): Transport {
  if (config.backend.type === 'vxlan') return 'vxlan'
  const w = config.backend.wireguard
  if (w.vxlanWithinLocation && self.location !== undefined && self.location === remote.location) return 'vxlan'
  return 'wireguard'
}

export const usesWireguard = (config: NetworkConfig): boolean => config.backend.type === 'wireguard'
/** The device a node's record speaks for (its published MTU): WireGuard whenever it is in use. */
export const primaryTransport = (config: NetworkConfig): Transport => usesWireguard(config) ? 'wireguard' : 'vxlan'
export const usesVxlan = (config: NetworkConfig): boolean =>
  config.backend.type === 'vxlan' || config.backend.wireguard.vxlanWithinLocation

export function desiredState (config: NetworkConfig, nodes: Iterable<NodeRecord>, self: LocalIdentity): Desired {
  const own = self.podCIDRs.map(tunnelAddress)
  const ownSrc = new Map(own.map(a => [a.family, a.ip]))
  const ownCidrs = self.podCIDRs.map(c => parseCidr(c))
  const addresses = own.map(a => `${a.ip}/${hostPrefix(a.family)}`)
  const ownUnderlay = parseIp(self.underlayIp)
  const underlayFamily = ownUnderlay.family

  const peers: Peer[] = []
  const remotes: VxlanRemote[] = []
  const routes: Route[] = []
  const transports = new Map<string, Transport>()
  const skipped: SkippedNode[] = []
  const paths: Record<Transport, PeerPath[]> = { wireguard: [], vxlan: [] }
  // Routes toward a peer behind a narrower path (self.pathMtus): their MTU is set once the
  // device's is known (below). The device itself keeps what every peer's link family needs.
  const narrow: Array<{ node: string, route: Route, path: number, transport: Transport, outer: Family }> = []
  const pathTo = (node: string, family: Family): PeerPath => ({ node, family })

  const sorted = [...nodes].filter(n => n.name !== self.name).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  for (const node of sorted) {
    const facts = factsOf(node)
    const clash = facts.cidrs.findIndex(c => ownCidrs.some(o => overlaps(o, c)))
    if (clash >= 0) { skipped.push({ node: node.name, reason: `pod CIDR ${node.podCIDRs[clash]} overlaps this node's` }); continue }
    const endpoint = facts.endpoint
    // Another record naming this node's own underlay is a clone or a forgery: a peer at our own
    // address would send its traffic to ourselves.
    if (endpoint.family === ownUnderlay.family && parseIp(endpoint.ip).addr === ownUnderlay.addr) {
      skipped.push({ node: node.name, reason: `endpoint ${node.endpoint} is this node's own underlay address` })
      continue
    }
    const transport = transportFor(config, self, node)
    if (transport === 'wireguard') {
      if (node.publicKey === undefined) { skipped.push({ node: node.name, reason: 'record has no WireGuard public key' }); continue }
      peers.push({
        node: node.name,
        publicKey: node.publicKey,
        endpoint: node.endpoint,
        allowedIps: [...node.podCIDRs].sort(),
        persistentKeepalive: config.backend.wireguard.persistentKeepalive
      })
      paths.wireguard.push(pathTo(node.name, endpoint.family))
      node.podCIDRs.forEach((dst, i) => {
        const family = facts.cidrs[i]?.family ?? 4
        const src = ownSrc.get(family)
        const route: Route = { family, dst, dev: self.devices.wireguard, ...(src !== undefined ? { src } : {}) }
        routes.push(route)
        const path = self.pathMtus?.get(node.name)
        if (path !== undefined) narrow.push({ node: node.name, route, path, transport: 'wireguard', outer: endpoint.family })
      })
    } else {
      if (node.vxlan === undefined) { skipped.push({ node: node.name, reason: 'record has no VXLAN MAC' }); continue }
      if (endpoint.family !== underlayFamily) {
        skipped.push({ node: node.name, reason: `underlay ${endpoint.ip} is not IPv${underlayFamily} like this node's` })
        continue
      }
      const tunnelIps = facts.tunnel
      remotes.push({ node: node.name, mac: node.vxlan.mac, underlayIp: endpoint.ip, tunnelIps: tunnelIps.map(a => a.ip) })
      paths.vxlan.push(pathTo(node.name, endpoint.family))
      for (const dst of node.podCIDRs) {
        const family: Family = dst.includes(':') ? 6 : 4
        const via = tunnelIps.find(a => a.family === family)?.ip
        const src = ownSrc.get(family)
        const route: Route = { family, dst, dev: self.devices.vxlan, ...(via !== undefined ? { via } : {}), ...(src !== undefined ? { src } : {}) }
        routes.push(route)
        const path = self.pathMtus?.get(node.name)
        if (path !== undefined) narrow.push({ node: node.name, route, path, transport: 'vxlan', outer: endpoint.family })
      }
    }
    transports.set(node.name, transport)
  }

  routes.push(...serviceRoutes(config, self))
  const state: DesiredState = { routes }
  const mtuOf = (transport: Transport): DeviceMtu => deviceMtu({
    transport,
    underlayFamily,
    underlayMtu: self.underlayMtu,
    peers: paths[transport],
    ...(config.mtu !== undefined ? { override: config.mtu } : {})
  })
  const mtu: Omit<MtuPlan, 'pod'> = {}
  if (usesWireguard(config)) {
    mtu.wireguard = mtuOf('wireguard')
    const wireguard: WireguardDevice = {
      ifname: self.devices.wireguard,
      publicKey: self.publicKey,
      listenPort: config.backend.wireguard.port,
      mtu: mtu.wireguard.mtu,
      addresses,
      peers
    }
    state.wireguard = wireguard
  }
  if (usesVxlan(config) && self.vxlanMac !== undefined) {
    mtu.vxlan = mtuOf('vxlan')
    const vxlan: VxlanDevice = {
      ifname: self.devices.vxlan,
      vni: config.backend.vxlan.vni,
      port: config.backend.vxlan.port,
      mtu: mtu.vxlan.mtu,
      mac: self.vxlanMac,
      localIp: self.underlayIp,
      addresses,
      remotes
    }
    state.vxlan = vxlan
  }
  const narrowed = new Map<string, NarrowPath>()
  for (const n of narrow) {
    const device = mtu[n.transport]
    if (device === undefined) continue
    const routeMtu = narrowRouteMtu({ transport: n.transport, outer: n.outer, pathMtu: n.path, deviceMtu: device.mtu, inner: n.route.family })
    if (routeMtu === undefined) continue
    n.route.mtu = routeMtu
    const seen = narrowed.get(n.node)
    if (seen === undefined || routeMtu < seen.routeMtu) narrowed.set(n.node, { node: n.node, pathMtu: n.path, routeMtu })
  }
  // Mixed mode: pods reach both devices through one interface, so they get the smaller MTU.
  const devices = [mtu.wireguard, mtu.vxlan].filter((d): d is DeviceMtu => d !== undefined)
  const pod = devices.length > 0 ? podMtu(devices) : mtuOf(primaryTransport(config)).mtu
  const narrowList = [...narrowed.values()].sort((a, b) => a.node < b.node ? -1 : a.node > b.node ? 1 : 0)
  return { state, transports, skipped, mtu: { ...mtu, pod, ...(narrowList.length > 0 ? { narrow: narrowList } : {}) } }
}

/**
 * A route per service range (issue #11) on the node's primary tunnel device. A node's own
 * processes need one to reach a cluster IP at all (their packets are routed before the output
 * hook rewrites the address, then routed again), and a packet to a cluster IP without endpoints
 * must be routed to meet the rule that refuses it. Its source is the pod bridge's gateway: an
 * address inside this node's pod subnet, which every other node routes back through the mesh
 * and a pod of this node reaches on its own link — so a reply finds its way whichever endpoint
 * the connection went to, and host traffic is never NATed (an underlay source would be dropped
 * by a WireGuard peer's allowed IPs).
 */
export function serviceRoutes (config: NetworkConfig, self: LocalIdentity): Route[] {
  const ranges = config.services
  if (ranges === undefined) return []
  const dev = primaryTransport(config) === 'wireguard' ? self.devices.wireguard : self.devices.vxlan
  const gateways = self.podCIDRs.length === 0 ? [] : podGateways(self.podCIDRs)
  const out: Route[] = []
  for (const dst of [ranges.ipv4, ranges.ipv6]) {
    if (dst === undefined) continue
    const family = parseCidr(dst).family
    const gw = gateways.find(g => g.family === family)
    // A family this node has no pod subnet for has no source to give: no route (no pod of that family either).
    if (gw === undefined) continue
    out.push({ family, dst, dev, src: gw.ip })
  }
  return out
}

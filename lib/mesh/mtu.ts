// The MTU table: what each tunnel costs per packet, by backend and by the family of the OUTER
// (underlay) header, and the MTU one tunnel device gets when it serves many peers. Pure: the
// daemon, podmeshctl (status, diff, doctor) and the tests all run these functions.
//
// One device serves every peer of its transport, so its MTU is the smallest that every current
// peer's link needs: a peer reached over IPv6 costs 20 bytes more than one over IPv4. A path
// narrower than the links (a WAN hop between sites, found by path-MTU discovery) does not lower
// the device: only the routes toward the peers behind it get a smaller MTU (`narrowRouteMtu`),
// so traffic inside a site keeps the full size.

import type { Family } from '../ipam/cidr'
import type { Transport } from './desired'

/** Bytes of headers a tunnel adds to each inner packet, by outer family. */
export const TUNNEL_OVERHEAD: Readonly<Record<Transport, Readonly<Record<Family, number>>>> = {
  // outer IPv4 20 / IPv6 40, UDP 8, WireGuard data header 16, Poly1305 tag 16
  wireguard: { 4: 60, 6: 80 },
  // outer IPv4 20 / IPv6 40, UDP 8, VXLAN 8, inner Ethernet 14
  vxlan: { 4: 50, 6: 70 }
}

export const tunnelOverhead = (transport: Transport, outer: Family): number => TUNNEL_OVERHEAD[transport][outer]

/** The inner MTU a link of `linkMtu` bytes carries through `transport` with an `outer` header. */
export const tunnelMtu = (transport: Transport, outer: Family, linkMtu: number): number =>
  linkMtu - tunnelOverhead(transport, outer)

/** One peer as the device MTU sees it: the family of its endpoint (or VTEP) address. */
export interface PeerPath {
  node: string
  /** Family of the peer's underlay address: the outer header's family toward it. */
  family: Family
}

export interface DeviceMtuInput {
  transport: Transport
  /** Family and MTU of the node's own underlay interface. */
  underlayFamily: Family
  underlayMtu: number
  peers: readonly PeerPath[]
  /** The config's `mtu`: wins over the computed value, even when a path cannot carry it. */
  override?: number
}

export interface DeviceMtu {
  transport: Transport
  /** What the device gets. */
  mtu: number
  /** The largest MTU every current peer's path carries (with no peers: the node's own underlay family's). */
  fits: number
  /** The peer whose path holds `fits` below what the node's own underlay family would give; first by name. */
  limitedBy?: { node: string, family: Family }
  /** Set when `mtu` is the config's override. */
  override?: number
}

export function deviceMtu (i: DeviceMtuInput): DeviceMtu {
  const own = tunnelMtu(i.transport, i.underlayFamily, i.underlayMtu)
  let fits = i.peers.length === 0 ? own : Infinity
  let narrowest: PeerPath | undefined
  const byName = [...i.peers].sort((a, b) => a.node < b.node ? -1 : a.node > b.node ? 1 : 0)
  for (const p of byName) {
    const m = tunnelMtu(i.transport, p.family, i.underlayMtu)
    if (m < fits) { fits = m; narrowest = p }
  }
  return {
    transport: i.transport,
    mtu: i.override ?? fits,
    fits,
    ...(narrowest !== undefined && fits < own ? { limitedBy: { node: narrowest.node, family: narrowest.family } } : {}),
    ...(i.override !== undefined ? { override: i.override } : {})
  }
}

/** True when the config's override is larger than some current peer's path carries. */
export const overrideTooLarge = (d: DeviceMtu): boolean => d.override !== undefined && d.override > d.fits

/** Pods reach every tunnel through one interface: they get the smallest device MTU. */
export function podMtu (devices: ReadonlyArray<{ mtu: number }>): number {
  if (devices.length === 0) throw new RangeError('pod MTU: no tunnel device')
  return Math.min(...devices.map(d => d.mtu))
}

/**
 * The tunnel MTU a node publishes in its record: its primary device's MTU with no peers (the
 * override, else its underlay MTU minus the overhead of its own underlay family). WireGuard is
 * the primary device whenever it is in use (mixed mode too).
 */
export function recordMtu (primary: Transport, underlayFamily: Family, underlayMtu: number, override?: number): number {
  return override ?? tunnelMtu(primary, underlayFamily, underlayMtu)
}

/** The inverse, for podmeshctl, which knows a node only from its record: the underlay MTU behind `recordMtu`. */
export const underlayMtuOf = (primary: Transport, underlayFamily: Family, published: number): number =>
  published + tunnelOverhead(primary, underlayFamily)

/** One line for logs and `podmeshctl`: what limits the device, or why the override does not fit. */
export function describeDeviceMtu (ifname: string, d: DeviceMtu): string {
  const who = d.limitedBy !== undefined ? ` (${d.limitedBy.node}'s IPv${d.limitedBy.family} endpoint needs it)` : ''
  if (overrideTooLarge(d)) return `${ifname} mtu ${d.mtu} (config) does not fit the current peers' paths: at most ${d.fits}${who}`
  return `${ifname} mtu ${d.mtu}${d.override !== undefined ? ' (config)' : who}`
}

/**
 * WireGuard pads each packet's plaintext to a multiple of 16 bytes, capped at the device's MTU:
 * at the device MTU the 60/80 bytes hold, but a packet sized for a route below it may grow by
 * up to 15 bytes (measured: a 1340-byte packet left as a 1404-byte datagram and was fragmented
 * at a 1400-byte hop). Route MTUs below the device's are therefore multiples of 16.
 */
export const PLAINTEXT_PADDING: Readonly<Record<Transport, number>> = { wireguard: 16, vxlan: 1 }

/** The smallest MTU an inner route may carry: IPv6 requires 1280 on every link, IPv4 576. */
const INNER_FLOOR: Readonly<Record<Family, number>> = { 4: 576, 6: 1280 }

/**
 * The MTU of the pod routes (of family `inner`) toward a peer whose path MTU is `pathMtu`: the
 * path less the tunnel's outer headers (WireGuard: rounded down to its padding), or undefined
 * when the device's MTU fits the path. Never below the inner family's floor: on a path that
 * narrow the outer packets are fragmented, which is the most that can be done.
 */
export function narrowRouteMtu (o: { transport: Transport, outer: Family, pathMtu: number, deviceMtu: number, inner: Family }): number | undefined {
  const fits = tunnelMtu(o.transport, o.outer, o.pathMtu)
  // At or above the device's MTU the device decides (and WireGuard pads no further than it).
  if (fits >= o.deviceMtu) return undefined
  const pad = PLAINTEXT_PADDING[o.transport]
  return Math.max(Math.floor(fits / pad) * pad, INNER_FLOOR[o.inner])
}

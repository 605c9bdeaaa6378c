// Whether two kernel reads are the same to the planner. Pure. Every field plan() reads is
// compared exactly (texts as texts, no hash); the only fields left out are the ones plan() never
// reads: a WireGuard peer's handshake time and byte counters, which move all the time on a live
// peer. So plan(d, a) and plan(d, b) are equal whenever this says a and b are the same. WireGuard peers are matched by public key, not position (wireguard-go lists them in Go
// map order, a new order on every dump); everything else in list order (the kernel's dumps are
// stable). A difference this cannot classify (an extra or missing field) counts as a change, so
// an error here can only cost a full plan, never hide drift.

import type { ObservedState, ObservedWireguard, Route } from './types'

type ObservedPeer = ObservedWireguard['peers'][number]

export function samePlanInput (a: ObservedState, b: ObservedState): boolean {
  if (!sameWireguard(a.wireguard, b.wireguard) || !sameData(a.vxlan, b.vxlan) || a.routes.length !== b.routes.length) return false
  // Index loops, not every(): this runs on 10,000+ routes at each resync.
  for (let i = 0; i < a.routes.length; i++) if (!sameRoute(a.routes[i] as Route, b.routes[i])) return false
  return true
}

/** Every field of a route, the ones routeKey (the planner's identity of a route) is made of; absent ≠ ''. */
function sameRoute (a: Route, b: Route | undefined): boolean {
  if (a === b) return true
  return b !== undefined && a.family === b.family && a.dst === b.dst && a.dev === b.dev &&
    a.via === b.via && a.src === b.src && a.mtu === b.mtu && Object.keys(a).length === Object.keys(b).length
}

function sameWireguard (a: ObservedWireguard | undefined, b: ObservedWireguard | undefined): boolean {
  if (a === b) return true
  if (a === undefined || b === undefined) return false
  if (a.ifname !== b.ifname || a.publicKey !== b.publicKey || a.listenPort !== b.listenPort || a.mtu !== b.mtu) return false
  if (!sameData(a.addresses, b.addresses) || a.peers.length !== b.peers.length) return false
  if (a.peers === b.peers) return true
  let inOrder = true
  for (let i = 0; i < a.peers.length && inOrder; i++) inOrder = samePeer(a.peers[i] as ObservedPeer, b.peers[i])
  if (inOrder) return true
  const byKey = new Map(b.peers.map(p => [p.publicKey, p]))
  if (byKey.size !== b.peers.length || new Set(a.peers.map(p => p.publicKey)).size !== a.peers.length) return false
  return a.peers.every(p => samePeer(p, byKey.get(p.publicKey)))
}

/** What the planner reads of a peer; the handshake time and the counters it never reads. */
function samePeer (a: ObservedPeer, b: ObservedPeer | undefined): boolean {
  if (a === b) return true
  return b !== undefined && a.publicKey === b.publicKey && a.endpoint === b.endpoint &&
    a.persistentKeepalive === b.persistentKeepalive && sameData(a.allowedIps, b.allowedIps)
}

/** Structural equality of plain data (strings, numbers, booleans, arrays, objects); arrays in order. */
function sameData (a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((x, i) => sameData(x, bb[i]))
  }
  const ka = Object.keys(a)
  if (ka.length !== Object.keys(b).length) return false
  return ka.every(k => Object.hasOwn(b, k) && sameData((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}

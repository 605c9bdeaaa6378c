// The route reconciler's kernel side: lists podmesh's routes (main table, podmesh's route
// protocol) as plain Routes with device names, and applies a route diff in netlink batches.
// It never lists, replaces or deletes a route without podmesh's protocol: deletes carry the
// protocol (the kernel then matches only ours), and adds are exclusive unless the route being
// replaced is already ours.

import type { Route } from '../mesh/types'
import { isRtnlError, type KernelRoute, type Rtnl } from './rtnl'
import { ROUTE_PROTOCOL } from './route-protocol'

const MAIN_TABLE = 254

export type RouteProblem = 'unknown-device' | 'conflict'

export class RouteError extends Error {
  readonly code = 'EROUTE'
  constructor (readonly problem: RouteProblem, readonly route: Route | undefined, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'RouteError'
  }
}
export const isRouteError = (e: unknown): e is RouteError => e instanceof RouteError

const routeText = (r: Route): string =>
  `${r.dst}${r.via !== undefined ? ` via ${r.via} onlink` : ''} dev ${r.dev}${r.src !== undefined ? ` src ${r.src}` : ''}${r.mtu !== undefined ? ` mtu ${r.mtu}` : ''}`

/** Same destination in the kernel's eyes: the key a replace or an EEXIST is about. */
const slotKey = (r: { family: number, dst: string }): string => `${r.family}|${r.dst}`

/**
 * podmesh's routes in the main table. A route whose device index is not in `ifnameByIndex` (its
 * device is going away) gets dev '' so that a plan can still delete it.
 */
export async function observeRoutes (rtnl: Rtnl, ifnameByIndex: ReadonlyMap<number, string>): Promise<Route[]> {
  return (await rtnl.routes(ROUTE_PROTOCOL)).map(k => asRoute(k, k.oif === undefined ? '' : ifnameByIndex.get(k.oif) ?? ''))
}

/**
 * The Route of a kernel route, made once per (frozen, shared) kernel route and device name: a
 * quiet resync reads the same 10,000 kernel routes again and gets the same Route objects back.
 */
const routeOf = new WeakMap<KernelRoute, Route>()
function asRoute (k: KernelRoute, dev: string): Route {
  const known = routeOf.get(k)
  if (known !== undefined && known.dev === dev) return known
  const r: Route = Object.freeze({
    family: k.family,
    dst: k.dst,
    dev,
    ...(k.src !== undefined ? { src: k.src } : {}),
    ...(k.via !== undefined ? { via: k.via } : {}),
    ...(k.mtu !== undefined ? { mtu: k.mtu } : {})
  })
  routeOf.set(k, r)
  return r
}

function toKernel (r: Route, oif: number | undefined): KernelRoute {
  return {
    family: r.family,
    dst: r.dst,
    ...(oif !== undefined ? { oif } : {}),
    ...(r.src !== undefined ? { src: r.src } : {}),
    ...(r.via !== undefined ? { via: r.via } : {}),
    ...(r.mtu !== undefined ? { mtu: r.mtu } : {}),
    onlink: r.via !== undefined,
    protocol: ROUTE_PROTOCOL,
    table: MAIN_TABLE
  }
}

/**
 * Deletes `del`, then adds `add`, each as one windowed netlink batch. An added route replaces a
 * podmesh route to the same destination; a foreign route there is a RouteError('conflict') and
 * stays untouched. An added route naming a device that does not exist is a
 * RouteError('unknown-device') and nothing is changed.
 */
export async function applyRoutes (rtnl: Rtnl, add: readonly Route[], del: readonly Route[]): Promise<void> {
  if (add.length === 0 && del.length === 0) return
  const indexByName = new Map((await rtnl.links()).map(l => [l.name, l.index]))
  const missing = add.find(r => !indexByName.has(r.dev))
  if (missing !== undefined) {
    throw new RouteError('unknown-device', missing, `route ${routeText(missing)}: device ${missing.dev === '' ? '(none)' : missing.dev} does not exist`)
  }
  // A route added again on the same device and next hop (another MTU or source) is replaced in
  // place below, never deleted first: traffic to that destination has a route throughout. One
  // that moves to another device or next hop is deleted first: the kernel refuses to replace an
  // IPv6 route with an onlink next hop on another device (EINVAL).
  const sameWay = (r: Route): string => `${slotKey(r)}|${r.dev}|${r.via ?? ''}`
  const readded = new Set(add.map(sameWay))
  const gone = del.filter(r => !readded.has(sameWay(r)))
  if (gone.length > 0) {
    // A route whose device is gone went with it; without a device the delete still matches
    // by destination and protocol, so it can only hit one of ours.
    await rtnl.delRoutes(gone.map(r => toKernel(r, indexByName.get(r.dev))))
  }
  if (add.length === 0) return
  const ours = new Set((await rtnl.routes(ROUTE_PROTOCOL)).map(slotKey))
  const replace = add.filter(r => ours.has(slotKey(r)))
  const fresh = add.filter(r => !ours.has(slotKey(r)))
  if (replace.length > 0) await rtnl.addRoutes(replace.map(r => toKernel(r, indexByName.get(r.dev))), { replace: true })
  if (fresh.length > 0) {
    try {
      await rtnl.addRoutes(fresh.map(r => toKernel(r, indexByName.get(r.dev))), { replace: false })
    } catch (e) {
      if (isRtnlError(e) && e.errno === 'EEXIST') {
        throw new RouteError('conflict', undefined, `a route not owned by podmesh holds the destination: ${e.message}`, e)
      }
      throw e
    }
  }
}

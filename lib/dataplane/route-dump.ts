// Reads the messages of an RTM_GETROUTE dump straight from their bytes, keeping only one
// protocol's routes of the main table. The resync dumps every route of the node each 30 s: with
// 10,000 peers that is 10,000+ messages, and the netlink package's generic parser built an object
// for each message, its header and every attribute (a Buffer each) before podmesh threw most of
// them away. Here the header's protocol and table bytes are looked at first, and only the few
// attributes a KernelRoute holds are read. Pure: bytes in, values out.

import type { Family } from '../ipam/cidr'

const AF_INET6 = 10
/** Offsets in struct rtmsg (linux/rtnetlink.h): family, dst_len, src_len, tos, table, protocol, scope, type, flags. */
const RTM_FAMILY = 0
const RTM_DST_LEN = 1
const RTM_TABLE = 4
const RTM_PROTOCOL = 5
const RTM_FLAGS = 8
export const RTMSG_SIZE = 12
/** Route attribute types (enum rtattr_type_t). */
const RTA_DST = 1
const RTA_OIF = 4
const RTA_GATEWAY = 5
const RTA_PREFSRC = 7
const RTA_METRICS = 8
const RTA_TABLE = 15
/** Nested in RTA_METRICS. */
const RTAX_MTU = 2
export const RTNH_F_ONLINK = 4

/** A route as podmesh compares it with the one it wants. */
export interface KernelRoute {
  family: Family
  dst: string
  oif?: number
  src?: string
  via?: string
  onlink: boolean
  protocol: number
  table: number
  /** The route's MTU metric (`ip route … mtu N`): packets toward it are sized for a narrower path. */
  mtu?: number
}

/** Canonical text of an address as the kernel carries it (4 or 16 bytes), as formatIp writes it. */
export function ipText (buf: Uint8Array): string {
  if (buf.length === 4) return `${buf[0] as number}.${buf[1] as number}.${buf[2] as number}.${buf[3] as number}`
  // Eight hextets read straight from the bytes (no BigInt: a 10,000-peer route dump holds 10,000
  // IPv6 addresses), then RFC 5952: the longest run (≥ 2) of zero hextets, the first on a tie, is "::".
  const h: number[] = []
  for (let i = 0; i < 16; i += 2) h.push(((buf[i] as number) << 8) | (buf[i + 1] as number))
  let best = -1; let bestLen = 0
  for (let i = 0; i < 8;) {
    if (h[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && h[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i }
    i = j
  }
  const hex = (from: number, to: number): string => h.slice(from, to).map(x => x.toString(16)).join(':')
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`
}

const align4 = (n: number): number => (n + 3) & ~3

/** The MTU inside an RTA_METRICS payload, if it carries one. */
function metricsMtu (buf: Buffer, start: number, end: number): number | undefined {
  for (let at = start; at + 4 <= end;) {
    const len = buf.readUInt16LE(at)
    if (len < 4 || at + len > end) return undefined
    if ((buf.readUInt16LE(at + 2) & 0x3fff) === RTAX_MTU && len >= 8) return buf.readUInt32LE(at + 4)
    at += align4(len)
  }
  return undefined
}

/**
 * The route in one RTM_NEWROUTE payload (struct rtmsg and its attributes), or undefined when it
 * is not `protocol`'s or not in `table`. A truncated payload is an error naming the cut.
 */
export function parseRouteMessage (payload: Buffer, protocol: number, table: number): KernelRoute | undefined {
  if (payload.length < RTMSG_SIZE) throw new Error(`route message of ${payload.length} bytes, shorter than struct rtmsg`)
  if (payload[RTM_PROTOCOL] !== protocol) return undefined
  let routeTable = payload[RTM_TABLE] as number
  let dst: string | undefined
  let oif: number | undefined
  let src: string | undefined
  let via: string | undefined
  let mtu: number | undefined
  for (let at = RTMSG_SIZE; at + 4 <= payload.length;) {
    const len = payload.readUInt16LE(at)
    if (len < 4 || at + len > payload.length) throw new Error(`route attribute at byte ${at} claims ${len} bytes of ${payload.length - at} left`)
    const type = payload.readUInt16LE(at + 2) & 0x3fff
    const body = at + 4
    switch (type) {
      case RTA_TABLE: if (len >= 8) routeTable = payload.readUInt32LE(body); break
      case RTA_DST: dst = ipText(payload.subarray(body, at + len)); break
      case RTA_OIF: if (len >= 8) oif = payload.readUInt32LE(body); break
      case RTA_PREFSRC: src = ipText(payload.subarray(body, at + len)); break
      case RTA_GATEWAY: via = ipText(payload.subarray(body, at + len)); break
      case RTA_METRICS: mtu = metricsMtu(payload, body, at + len); break
    }
    at += align4(len)
  }
  if (routeTable !== table) return undefined
  const family: Family = payload[RTM_FAMILY] === AF_INET6 ? 6 : 4
  const route: KernelRoute = {
    family,
    dst: `${dst ?? (family === 4 ? '0.0.0.0' : '::')}/${payload[RTM_DST_LEN] as number}`,
    onlink: (payload.readUInt32LE(RTM_FLAGS) & RTNH_F_ONLINK) !== 0,
    protocol,
    table: routeTable
  }
  if (oif !== undefined) route.oif = oif
  if (src !== undefined) route.src = src
  if (via !== undefined) route.via = via
  if (mtu !== undefined) route.mtu = mtu
  return route
}

/** sizeof(struct nlmsghdr). */
export const NLMSG_HDRLEN = 16
const RTM_NEWROUTE = 24

/** Where each message's payload lies in a dump's datagrams (parallel arrays, reused dump after dump). */
class MessageSpans {
  buf: Buffer[] = []
  start: number[] = []
  end: number[] = []
  route: Array<KernelRoute | undefined> = []
  length = 0
  clear (): void { this.length = 0 }
  push (buf: Buffer, start: number, end: number, route: KernelRoute | undefined): void {
    const i = this.length++
    this.buf[i] = buf; this.start[i] = start; this.end[i] = end; this.route[i] = route
  }

  /** Drops what lies past `length`, so that old datagrams and routes are not kept alive. */
  trim (): void { this.buf.length = this.start.length = this.end.length = this.route.length = this.length }

  /** Forgets every message but keeps the arrays' room for the next dump (no regrowth each resync). */
  release (): void {
    this.buf.fill(EMPTY)
    this.route.fill(undefined)
    this.length = 0
  }
}
const EMPTY = Buffer.alloc(0)

/**
 * Parses dump after dump of the same routes (the resync's), straight from the datagrams of each
 * reply (RouteDumpSocket), reading afresh only the messages that changed: a message whose bytes
 * equal, byte for byte, those of the message at the same place in the previous dump gives back
 * that dump's route object (frozen: successive reads share it), and a dump equal to the previous
 * one throughout gives back the previous array itself. The kernel lists routes in a stable order,
 * so on a quiet node every message is a hit; a route added or removed shifts the rest, which then
 * parse afresh once. No object is made for an unchanged message. Only the previous dump is kept.
 */
export class RouteDumpReader {
  private previous = new MessageSpans()
  private current = new MessageSpans()
  private routes: KernelRoute[] = []

  constructor (private readonly protocol: number, private readonly table: number) {}

  /** The routes in the RTM_NEWROUTE messages of `datagrams` (one dump's, in order). */
  read (datagrams: readonly Buffer[]): KernelRoute[] {
    const prev = this.previous
    const cur = this.current
    cur.clear()
    let same = true
    for (const d of datagrams) {
      for (let at = 0; at + NLMSG_HDRLEN <= d.length;) {
        const len = d.readUInt32LE(at)
        if (len < NLMSG_HDRLEN || at + len > d.length) throw new Error(`netlink message at byte ${at} claims ${len} bytes of ${d.length - at} left`)
        if (d.readUInt16LE(at + 4) === RTM_NEWROUTE) {
          const start = at + NLMSG_HDRLEN
          const end = at + len
          const i = cur.length
          let route: KernelRoute | undefined
          if (i < prev.length && prev.end[i]! - prev.start[i]! === end - start && d.compare(prev.buf[i]!, prev.start[i], prev.end[i], start, end) === 0) {
            route = prev.route[i]
          } else {
            same = false
            route = freeze(parseRouteMessage(d.subarray(start, end), this.protocol, this.table))
          }
          cur.push(d, start, end, route)
        }
        at += (len + 3) & ~3
      }
    }
    if (cur.length !== prev.length) same = false
    cur.trim()
    prev.release()
    this.previous = cur
    this.current = prev
    if (same) return this.routes
    const out: KernelRoute[] = []
    for (let i = 0; i < cur.length; i++) { const r = cur.route[i]; if (r !== undefined) out.push(r) }
    this.routes = out
    return out
  }
}

const freeze = (r: KernelRoute | undefined): KernelRoute | undefined => r === undefined ? undefined : Object.freeze(r)

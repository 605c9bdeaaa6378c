// Reads the messages of an RTM_GETROUTE dump straight from their bytes, keeping only one
// protocol's routes of the main table. The resync dumps every route of the node each 30 s: with
// 10,000 peers that is 10,000+ messages, and the netlink package's generic parser built an object
// for each message, its header and every attribute (a Buffer each) before podmesh threw most of
// them away. Here the header's protocol and table bytes are looked at first, and only the few
// attributes a KernelRoute holds are read. Pure: bytes in, values out.

import { formatIp, type Family } from '../ipam/cidr'

const AF_INET6 = 10
/** Offsets in struct rtmsg (linux/rtnetlink.h): family, dst_len, src_len, tos, table, protocol, scope, type, flags. */
const RTM_FAMILY = 0
const RTM_DST_LEN = 1
const RTM_TABLE = 4
const RTM_PROTOCOL = 5
const RTM_FLAGS = 8
const RTMSG_SIZE = 12
/** Route attribute types (enum rtattr_type_t). */
const RTA_DST = 1
const RTA_OIF = 4
const RTA_GATEWAY = 5
const RTA_PREFSRC = 7
const RTA_METRICS = 8
const RTA_TABLE = 15
/** Nested in RTA_METRICS. */
const RTAX_MTU = 2
const RTNH_F_ONLINK = 4

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

/** Canonical text of an address as the kernel carries it (4 or 16 bytes). IPv4 takes the plain path. */
export function ipText (buf: Uint8Array): string {
  if (buf.length === 4) return `${buf[0] as number}.${buf[1] as number}.${buf[2] as number}.${buf[3] as number}`
  let a = 0n
  for (const b of buf) a = (a << 8n) | BigInt(b)
  return formatIp(6, a)
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

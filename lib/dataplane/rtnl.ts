// The one rtnetlink adapter: links, addresses, routes, neighbours and FDB entries of the network
// namespace this process runs in, as podmesh's plain values (canonical IP text, names, numbers).
// Every kernel call of the data plane goes through here; requests are pipelined on one socket
// with a bounded window, because an unbounded burst overruns the netlink binding.

import { createRtNetlink, type RawNetlinkSocket, type RtNetlinkSocket } from 'netlink'
import { formatInfo, formatVxlan, parseInfo, parseVxlan } from 'netlink/dist/rt/ifla'
import { AttrStream, type StreamData } from 'netlink/dist/structs'
import { parseIp, type Family } from '../ipam/cidr'
import { ipText, RouteDumpReader, RTNH_F_ONLINK, type KernelRoute } from './route-dump'
import { RouteDumpSocket } from './route-dump-socket'

export type { KernelRoute } from './route-dump'

const AF_INET = 2
const AF_INET6 = 10
const AF_BRIDGE = 7
const MAIN_TABLE = 254
const F_CREATE = 0x400
const F_EXCL = 0x200
const F_REPLACE = 0x100
/** How many requests may be in flight on the socket at once. */
const WINDOW = 32

export interface Link {
  index: number
  name: string
  mtu: number
  up: boolean
  /** rtnl link kind ("bridge", "vxlan", "veth", "wireguard", "tun"); '' when the kernel gives none. */
  kind: string
  mac?: string
  master?: number
  vxlan?: { vni: number, port: number, localIp?: string }
}

export interface Address { index: number, family: Family, ip: string, prefixLen: number }


/** A route metric as the kernel carries it: a native-endian u32. */
const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }
const routeMtu = (metrics: { mtu?: Buffer } | undefined): number | undefined =>
  metrics?.mtu !== undefined && metrics.mtu.length >= 4 ? metrics.mtu.readUInt32LE(0) : undefined

export interface RouteLookup { oif?: number, gateway?: string, mtu?: number }

export interface Neighbor { index: number, family: Family, ip: string, mac: string, permanent: boolean }
export interface FdbEntry { index: number, mac: string, dst: string }

export class RtnlError extends Error {
  readonly code = 'ERTNL'
  readonly errno: string | undefined
  constructor (readonly op: string, readonly detail: string, cause: unknown) {
    const errno = errnoOf(cause)
    super(`${op} ${detail}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'RtnlError'
    this.errno = errno
  }
}
export const isRtnlError = (e: unknown): e is RtnlError => e instanceof RtnlError

/**
 * The errno name of a failed request. The netlink package throws a plain
 * `Error('Request rejected: ESRCH')` without a `code`, so the name is read from the message.
 */
function errnoOf (e: unknown): string | undefined {
  const code = (e as { code?: unknown } | undefined)?.code
  if (typeof code === 'string') return code
  return /Request rejected: (E[A-Z0-9]+)/.exec((e as Error | undefined)?.message ?? '')?.[1]
}

const familyOf = (af: number): Family => (af === AF_INET6 ? 6 : 4)
const afOf = (f: Family): number => (f === 6 ? AF_INET6 : AF_INET)

function ipBuffer (ip: string): Buffer {
  const { family, addr } = parseIp(ip)
  const bytes = family === 4 ? 4 : 16
  const out = Buffer.alloc(bytes)
  let a = addr
  for (let i = bytes - 1; i >= 0; i--) { out[i] = Number(a & 0xffn); a >>= 8n }
  return out
}


const macText = (buf: Buffer): string => [...buf].map(b => b.toString(16).padStart(2, '0')).join(':')
const macBuffer = (mac: string): Buffer => Buffer.from(mac.split(':').map(h => parseInt(h, 16)))

/** Serialises an attribute stream (the package's nested-attribute writers) into one buffer. */
function concat (data: StreamData): Buffer {
  const out = new AttrStream()
  out.emit(data)
  return Buffer.concat(out.bufs)
}

/** Runs `fn` over `items` with at most WINDOW calls in flight; rejects with the first error after all settle. */
async function windowed<T> (items: readonly T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const errors: unknown[] = []
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T
      try { await fn(item) } catch (e) { errors.push(e) }
    }
  }
  await Promise.all(Array.from({ length: Math.min(WINDOW, items.length) }, worker))
  if (errors.length > 0) {
    const first = errors[0] as Error
    if (errors.length > 1) first.message += ` (and ${errors.length - 1} more errors)`
    throw first
  }
}

export interface RtnlOptions {
  /**
   * A request without a reply after this long fails with an RtnlError whose errno is
   * 'ETIMEDOUT', freeing its window slot: a lost reply must never hang a reconcile pass.
   */
  timeoutMs?: number
  /** The socket failed (ENOBUFS, a closed fd…); without a listener that would crash the process. */
  onError?: (e: Error) => void
  /** The raw socket route dumps go through (RouteDumpSocket); for a test that brings its own. */
  routeDumpSocket?: RawNetlinkSocket
}

/** Default per-request timeout: kernel replies take microseconds; this only catches a lost one. */
export const RTNL_TIMEOUT_MS = 10_000

export class Rtnl {
  private readonly timeoutMs: number
  private readonly onError: (e: Error) => void
  /** Opened at the first route dump, in the namespace the Rtnl was opened in. */
  private routeSocket: RouteDumpSocket | undefined

  private constructor (private readonly sock: RtNetlinkSocket, private readonly opts: RtnlOptions) {
    this.timeoutMs = opts.timeoutMs ?? RTNL_TIMEOUT_MS
    const onError = this.onError = opts.onError ?? (() => {})
    // The netlink package re-emits the raw socket's errors on its NetlinkSocket (sock.socket).
    sock.socket.on('error', onError)
  }

  /** Opens an rtnetlink socket; `sock` is for a caller (a test) that brings its own. */
  static open (opts: RtnlOptions = {}, sock: RtNetlinkSocket = createRtNetlink()): Rtnl {
    return new Rtnl(sock, opts)
  }

  close (): void {
    this.sock.socket.close()
    this.routeSocket?.close()
  }

  // ---- links ----

  async links (): Promise<Link[]> {
    const msgs = await this.dump('list links', '', () => this.sock.getLinks())
    return msgs.map(m => {
      const a = m.attrs
      let kind = ''
      let vxlan: Link['vxlan']
      if (a.linkinfo !== undefined) {
        const info = parseInfo(a.linkinfo)
        kind = info.kind ?? ''
        if (kind === 'vxlan' && info.data !== undefined) {
          const v = parseVxlan(info.data)
          const local = v.local ?? v.local6
          vxlan = {
            vni: v.id ?? 0,
            port: v.port === undefined ? 0 : v.port.readUInt16BE(0),
            ...(local !== undefined ? { localIp: ipText(local) } : {})
          }
        }
      }
      return {
        index: m.data.index ?? 0,
        name: a.ifname ?? '',
        mtu: a.mtu ?? 0,
        up: m.data.flags?.up === true,
        kind,
        ...(a.address !== undefined && a.address.length === 6 ? { mac: macText(a.address) } : {}),
        ...(a.master !== undefined ? { master: a.master } : {}),
        ...(vxlan !== undefined ? { vxlan } : {})
      }
    })
  }

  async link (name: string): Promise<Link | undefined> {
    return (await this.links()).find(l => l.name === name)
  }

  async createBridge (name: string, mtu: number): Promise<void> {
    const linkinfo = concat(formatInfo({ kind: 'bridge' }))
    await this.call('create bridge', name, () =>
      this.sock.newLink({}, { ifname: name, mtu, linkinfo }, { flags: F_CREATE | F_EXCL }))
  }

  async createVxlan (name: string, opts: { vni: number, port: number, localIp: string, mtu: number, mac: string }): Promise<void> {
    const port = Buffer.alloc(2)
    port.writeUInt16BE(opts.port)
    const local = ipBuffer(opts.localIp)
    // learning off: every remote is programmed from etcd, never learned by flooding.
    const data = concat(formatVxlan({
      id: opts.vni,
      port,
      learning: 0,
      ...(local.length === 4 ? { local } : { local6: local })
    }))
    const linkinfo = concat(formatInfo({ kind: 'vxlan', data }))
    await this.call('create vxlan', name, () =>
      this.sock.newLink({}, { ifname: name, mtu: opts.mtu, address: macBuffer(opts.mac), linkinfo }, { flags: F_CREATE | F_EXCL }))
  }

  /** Creates a kernel WireGuard link; EOPNOTSUPP where the kernel has no wireguard module. */
  async createWireguard (name: string): Promise<void> {
    const linkinfo = concat(formatInfo({ kind: 'wireguard' }))
    await this.call('create wireguard', name, () =>
      this.sock.newLink({}, { ifname: name, linkinfo }, { flags: F_CREATE | F_EXCL }))
  }

  async deleteLink (index: number, name: string): Promise<void> {
    await this.call('delete link', name, () => this.sock.delLink({ index }))
  }

  async setLink (index: number, name: string, change: { up?: boolean, mtu?: number, master?: number, mac?: string }): Promise<void> {
    const attrs = {
      ...(change.mtu !== undefined ? { mtu: change.mtu } : {}),
      ...(change.master !== undefined ? { master: change.master } : {}),
      ...(change.mac !== undefined ? { address: macBuffer(change.mac) } : {})
    }
    // `change` masks which flags to touch; `flags` holds their new values (an absent flag is off).
    const up = change.up === undefined ? {} : { change: { up: true as const }, flags: change.up ? { up: true as const } : {} }
    await this.call('set link', name, () => this.sock.setLink({ index, ...up }, attrs))
  }

  // ---- addresses ----

  async addresses (index?: number): Promise<Address[]> {
    const msgs = await this.dump('list addresses', '', () => this.sock.getAddresses())
    return msgs
      .filter(m => index === undefined || m.data.index === index)
      .flatMap(m => {
        const raw = m.attrs.local ?? m.attrs.address
        if (raw === undefined) return []
        return [{ index: m.data.index ?? 0, family: familyOf(m.data.family ?? AF_INET), ip: ipText(raw), prefixLen: m.data.prefixlen ?? 0 }]
      })
  }

  async addAddress (a: Address): Promise<void> {
    const buf = ipBuffer(a.ip)
    // nodad: the address is this node's alone by construction; DAD would delay it by seconds.
    const flags = a.family === 6 ? { nodad: true as const } : {}
    await this.call('add address', `${a.ip}/${a.prefixLen}`, () =>
      this.sock.newAddress({ family: afOf(a.family), prefixlen: a.prefixLen, index: a.index, flags }, { local: buf, address: buf },
        { flags: F_CREATE | F_REPLACE }))
  }

  async delAddress (a: Address): Promise<void> {
    const buf = ipBuffer(a.ip)
    await this.call('delete address', `${a.ip}/${a.prefixLen}`, () =>
      this.sock.delAddress({ family: afOf(a.family), prefixlen: a.prefixLen, index: a.index }, { local: buf, address: buf }))
  }

  // ---- routes ----

  /**
   * Routes of the main table carrying `protocol` (podmesh lists only its own). Successive calls
   * share the route objects of messages that did not change (RouteDumpReader): frozen, never mutate.
   */
  async routes (protocol: number): Promise<readonly KernelRoute[]> {
    // The raw datagrams, walked in place (route-dump.ts): the package's parser allocates per message.
    // The socket is opened here, not in open(): a process that never lists routes never has it.
    const datagrams = await this.dump('list routes', `proto ${protocol}`, async () => {
      this.routeSocket ??= new RouteDumpSocket(this.onError, this.opts.routeDumpSocket)
      return await this.routeSocket.dump(this.timeoutMs)
    })
    let reader = this.routeReaders.get(protocol)
    if (reader === undefined) this.routeReaders.set(protocol, reader = new RouteDumpReader(protocol, MAIN_TABLE))
    try {
      return reader.read(datagrams)
    } catch (e) {
      throw new RtnlError('list routes', `proto ${protocol}`, e)
    }
  }

  /**
   * How the kernel routes to `ip` now (`ip route get`): the outgoing link, the next hop when the
   * peer is not on-link, and the path MTU the kernel learned for it from a router's "too big"
   * (absent until one came). One request, no dump.
   */
  async routeTo (ip: string): Promise<RouteLookup> {
    const family: Family = ip.includes(':') ? 6 : 4
    const msgs = await this.call('look up route', ip, () =>
      this.sock.getRoute({ family: afOf(family), dstLen: family === 6 ? 128 : 32 }, { dst: ipBuffer(ip) }))
    const m = msgs[0]
    if (m === undefined) throw new RtnlError('look up route', ip, new Error('no answer'))
    const mtu = routeMtu(m.attrs.metrics)
    return {
      ...(m.attrs.oif !== undefined ? { oif: m.attrs.oif } : {}),
      ...(m.attrs.gateway !== undefined ? { gateway: ipText(m.attrs.gateway) } : {}),
      ...(mtu !== undefined ? { mtu } : {})
    }
  }

  /** Adds routes; `replace: false` fails (EEXIST) where a route to the same destination exists. */
  async addRoutes (routes: readonly KernelRoute[], opts: { replace?: boolean } = {}): Promise<void> {
    const flags = F_CREATE | (opts.replace === false ? F_EXCL : F_REPLACE)
    await windowed(routes, r => this.routeCall('add route', r, () =>
      this.sock.newRoute(this.routeHeader(r), this.routeAttrs(r), { flags })))
  }

  async delRoutes (routes: readonly KernelRoute[]): Promise<void> {
    await windowed(routes, r => this.routeCall('delete route', r, async () => {
      try {
        return await this.sock.delRoute(this.routeHeader(r), this.routeAttrs(r))
      } catch (e) {
        // Already gone (its device went away, or someone removed it): the goal is met.
        if (errnoOf(e) === 'ESRCH') return []
        throw e
      }
    }))
  }

  private routeHeader (r: KernelRoute): Parameters<RtNetlinkSocket['newRoute']>[0] {
    const dstLen = Number(r.dst.split('/')[1])
    return {
      family: afOf(r.family),
      dstLen,
      table: r.table,
      protocol: r.protocol,
      scope: r.via === undefined ? 'LINK' : 'UNIVERSE',
      type: 'UNICAST',
      ...(r.onlink ? { flags: { __unknown: RTNH_F_ONLINK } as never } : {})
    }
  }

  private routeAttrs (r: KernelRoute): Parameters<RtNetlinkSocket['newRoute']>[1] {
    return {
      dst: ipBuffer(r.dst.split('/')[0] as string),
      ...(r.oif !== undefined ? { oif: r.oif } : {}),
      ...(r.src !== undefined ? { prefsrc: ipBuffer(r.src) } : {}),
      ...(r.via !== undefined ? { gateway: ipBuffer(r.via) } : {}),
      ...(r.mtu !== undefined ? { metrics: { mtu: u32(r.mtu) } } : {})
    }
  }

  private async routeCall (op: string, r: KernelRoute, fn: () => Promise<unknown>): Promise<unknown> {
    return await this.call(op, `${r.dst}${r.via !== undefined ? ` via ${r.via}` : ''} oif ${r.oif ?? '-'}`, fn)
  }

  // ---- neighbours (ARP/NDP) and FDB ----

  async neighbors (index: number): Promise<Neighbor[]> {
    const msgs = await this.dump('list neighbours', `ifindex ${index}`, () => this.sock.getNeighbors())
    return msgs
      .filter(m => m.data.ifindex === index && (m.data.family === AF_INET || m.data.family === AF_INET6))
      .flatMap(m => m.attrs.dst === undefined || m.attrs.lladdr === undefined
        ? []
        : [{ index, family: familyOf(m.data.family ?? AF_INET), ip: ipText(m.attrs.dst), mac: macText(m.attrs.lladdr), permanent: m.data.state?.permanent === true }])
  }

  async setNeighbors (list: readonly Neighbor[]): Promise<void> {
    await windowed(list, n => this.call('add neighbour', `${n.ip} lladdr ${n.mac}`, () =>
      this.sock.newNeighbor({ family: afOf(n.family), ifindex: n.index, state: { permanent: true } },
        { dst: ipBuffer(n.ip), lladdr: macBuffer(n.mac) }, { flags: F_CREATE | F_REPLACE })))
  }

  async delNeighbors (list: readonly Neighbor[]): Promise<void> {
    await windowed(list, n => this.call('delete neighbour', `${n.ip}`, async () => {
      try {
        return await this.sock.delNeighbor({ family: afOf(n.family), ifindex: n.index }, { dst: ipBuffer(n.ip) })
      } catch (e) {
        if (errnoOf(e) === 'ENOENT') return []
        throw e
      }
    }))
  }

  /** Unicast FDB entries of a VXLAN device that carry a remote destination. */
  async fdb (index: number): Promise<FdbEntry[]> {
    const msgs = await this.dump('list fdb', `ifindex ${index}`, () => this.sock.getNeighbors({ family: AF_BRIDGE }))
    return msgs
      .filter(m => m.data.family === AF_BRIDGE && m.data.ifindex === index && m.attrs.dst !== undefined && m.attrs.lladdr !== undefined)
      .map(m => ({ index, mac: macText(m.attrs.lladdr as Buffer), dst: ipText(m.attrs.dst as Buffer) }))
  }

  /**
   * Adds or replaces FDB entries. REPLACE, because a unicast MAC has one remote: the kernel
   * appends remotes only to multicast/all-zero entries and silently ignores APPEND for a unicast
   * MAC that already has one, which would keep a moved node's old underlay address.
   */
  async addFdb (list: readonly FdbEntry[]): Promise<void> {
    await windowed(list, f => this.call('add fdb', `${f.mac} dst ${f.dst}`, () =>
      this.sock.newNeighbor({ family: AF_BRIDGE, ifindex: f.index, state: { permanent: true }, flags: { self: true } },
        { lladdr: macBuffer(f.mac), dst: ipBuffer(f.dst) }, { flags: F_CREATE | F_REPLACE })))
  }

  async delFdb (list: readonly FdbEntry[]): Promise<void> {
    await windowed(list, f => this.call('delete fdb', `${f.mac} dst ${f.dst}`, async () => {
      try {
        return await this.sock.delNeighbor({ family: AF_BRIDGE, ifindex: f.index, flags: { self: true } },
          { lladdr: macBuffer(f.mac), dst: ipBuffer(f.dst) })
      } catch (e) {
        if (errnoOf(e) === 'ENOENT') return []
        throw e
      }
    }))
  }

  /**
   * Dumps run one at a time: the netlink package reassembles only one multipart reply per
   * socket, so two dumps in flight at once corrupt each other. Writes stay pipelined.
   */
  private dumpQueue: Promise<unknown> = Promise.resolve()
  /** One reader per protocol listed: it keeps the previous dump to reuse what did not change. */
  private readonly routeReaders = new Map<number, RouteDumpReader>()
  private async dump<T> (op: string, detail: string, fn: () => Promise<T>): Promise<T> {
    const next = this.dumpQueue.then(async () => await this.call(op, detail, fn))
    this.dumpQueue = next.catch(() => undefined)
    return await next
  }

  private async call<T> (op: string, detail: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`no reply within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })), this.timeoutMs)
    })
    try {
      return await Promise.race([fn(), timeout])
    } catch (e) {
      throw new RtnlError(op, detail, e)
    } finally {
      clearTimeout(timer)
    }
  }
}



// A netlink socket of its own for route dumps (RTM_GETROUTE), whose replies are handed over as
// the datagrams the kernel sent, unparsed. The resync dumps every route of the node every 30 s;
// with 10,000 peers the netlink package's socket made an object and a Buffer view for each of
// the 10,000+ messages before podmesh looked at one (a third of an idle daemon's allocation).
// route-dump.ts walks these bytes in place instead. One dump at a time; each waits at most
// `timeoutMs` for its last datagram.

import { RawNetlinkSocket } from 'netlink'
import { NLMSG_HDRLEN, RTMSG_SIZE } from './route-dump'

const NETLINK_ROUTE = 0
const NLMSG_ERROR = 2
const NLMSG_DONE = 3
const NLM_F_REQUEST = 0x1
/** NLM_F_DUMP (ROOT | MATCH). */
const NLM_F_DUMP = 0x300
const RTM_GETROUTE = 26

/** A dump the kernel refused (an NLMSG_ERROR reply): its errno, negative as the kernel sends it. */
export class RouteDumpRefused extends Error {
  readonly code = 'EROUTEDUMP'
  constructor (readonly errno: number) {
    super(`the kernel refused the route dump (errno ${-errno})`)
    this.name = 'RouteDumpRefused'
  }
}

interface Pending { seq: number, datagrams: Buffer[], resolve: (d: Buffer[]) => void, reject: (e: Error) => void }

export class RouteDumpSocket {
  private readonly sock: RawNetlinkSocket
  private seq = Math.floor(Math.random() * 0x7fffffff)
  private pending: Pending | undefined
  private queue: Promise<unknown> = Promise.resolve()

  /** `sock` is for a caller (a test) that brings its own. */
  constructor (onError: (e: Error) => void, sock?: RawNetlinkSocket) {
    this.sock = sock ?? new RawNetlinkSocket(NETLINK_ROUTE)
    // Like the request socket: an idle dump socket never keeps the process alive.
    this.sock.unref()
    this.sock.on('message', (msg: Buffer) => this.receive(msg))
    this.sock.on('error', (e: Error) => onError(e))
  }

  close (): void {
    this.pending?.reject(new Error('socket closed'))
    this.pending = undefined
    this.sock.close()
  }

  /** The datagrams of one route dump, in order, up to and including the one holding NLMSG_DONE. */
  async dump (timeoutMs: number): Promise<Buffer[]> {
    const next = this.queue.then(async () => await this.one(timeoutMs))
    this.queue = next.catch(() => undefined)
    return await next
  }

  private async one (timeoutMs: number): Promise<Buffer[]> {
    this.seq = (this.seq % 0x7fffffff) + 1
    const seq = this.seq
    const req = Buffer.alloc(NLMSG_HDRLEN + RTMSG_SIZE)
    req.writeUInt32LE(req.length, 0)
    req.writeUInt16LE(RTM_GETROUTE, 4)
    req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6)
    req.writeUInt32LE(seq, 8)
    let timer: NodeJS.Timeout | undefined
    try {
      return await new Promise<Buffer[]>((resolve, reject) => {
        this.pending = { seq, datagrams: [], resolve, reject }
        timer = setTimeout(() => reject(Object.assign(new Error(`no reply within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })), timeoutMs)
        this.sock.send(req, {}, e => { if (e !== undefined) reject(e) })
      })
    } finally {
      clearTimeout(timer)
      this.pending = undefined
    }
  }

  private receive (msg: Buffer): void {
    const p = this.pending
    // A late datagram of a dump that timed out: not this one's.
    if (p === undefined || msg.length < NLMSG_HDRLEN || msg.readUInt32LE(8) !== p.seq) return
    p.datagrams.push(msg)
    // Only the headers are looked at here: the end of the dump, or a refusal.
    for (let at = 0; at + NLMSG_HDRLEN <= msg.length;) {
      const len = msg.readUInt32LE(at)
      const type = msg.readUInt16LE(at + 4)
      if (type === NLMSG_DONE) { p.resolve(p.datagrams); return }
      if (type === NLMSG_ERROR) {
        const errno = at + NLMSG_HDRLEN + 4 <= msg.length ? msg.readInt32LE(at + NLMSG_HDRLEN) : -5
        // errno 0 is an acknowledgement, which ends a request as DONE ends a dump.
        if (errno === 0) p.resolve(p.datagrams)
        else p.reject(new RouteDumpRefused(errno))
        return
      }
      if (len < NLMSG_HDRLEN) break
      at += (len + 3) & ~3
    }
  }
}

// Notices that the node's links or addresses may have changed: an rtnetlink socket of its own,
// joined to the link and address multicast groups, turns each burst of notifications into one
// 'changed'. It never says what changed — the listener re-reads the kernel (level-triggered) —
// so a slow periodic 'changed' covers notifications the kernel dropped (a full receive buffer
// loses them without telling anyone but this socket). Library code: emits, never logs.

import { EventEmitter } from 'node:events'
import { createRtNetlink, type RtNetlinkSocket } from 'netlink'

/** Why a 'changed' was emitted: a notification, the periodic check, or a socket error (e.g. ENOBUFS: notifications lost). */
export type UnderlayChangeCause = 'netlink' | 'periodic' | 'socket-error'

export interface UnderlayWatchOptions {
  /** Notifications within this window after the first become one 'changed'. Default 100 ms. */
  debounceMs?: number
  /** A 'changed' at least this often, whatever the socket says. Default 30 s. */
  periodicMs?: number
}

export interface UnderlayWatchEvents {
  changed: [UnderlayChangeCause]
}

// rtnetlink multicast groups (linux/rtnetlink.h): RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR.
const GROUPS = ['LINK', 'IPV4_IFADDR', 'IPV6_IFADDR'] as const

export class UnderlayWatch extends EventEmitter<UnderlayWatchEvents> {
  private readonly sock: RtNetlinkSocket
  private readonly debounceMs: number
  private pending: { timer: NodeJS.Timeout, cause: UnderlayChangeCause } | undefined
  private readonly periodic: NodeJS.Timeout
  private closed = false

  private constructor (o: UnderlayWatchOptions) {
    super()
    this.debounceMs = o.debounceMs ?? 100
    // Unreferenced like the request socket: a watch alone never keeps the process alive.
    this.sock = createRtNetlink()
    this.sock.on('message', () => this.notice('netlink'))
    this.sock.on('invalid', () => this.notice('netlink'))
    this.sock.socket.on('error', () => this.notice('socket-error'))
    for (const g of GROUPS) this.sock.addMembership(g)
    this.periodic = setInterval(() => this.notice('periodic'), o.periodicMs ?? 30_000)
    this.periodic.unref()
  }

  /** Opens the socket in the calling process's network namespace and joins the groups. */
  static open (o: UnderlayWatchOptions = {}): UnderlayWatch {
    return new UnderlayWatch(o)
  }

  /** Stops the timers and closes the socket; no 'changed' follows. Idempotent. */
  close (): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.periodic)
    if (this.pending !== undefined) clearTimeout(this.pending.timer)
    this.pending = undefined
    this.sock.socket.close()
  }

  /** One 'changed' debounceMs after the first notice of a burst; notices meanwhile join it (the delay never grows). */
  private notice (cause: UnderlayChangeCause): void {
    if (this.closed) return
    if (this.pending !== undefined) {
      // A lost-notification signal outranks an ordinary one in what the listener is told.
      if (cause === 'socket-error') this.pending.cause = cause
      return
    }
    const timer = setTimeout(() => {
      const c = this.pending?.cause ?? cause
      this.pending = undefined
      this.emit('changed', c)
    }, this.debounceMs)
    timer.unref()
    this.pending = { timer, cause }
  }
}

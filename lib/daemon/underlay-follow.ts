// Follows the node's underlay (issue #9): when the address in use leaves the interface
// (--public-interface, or the default route's), the node takes the interface's new address for
// its own data plane and publishes it as its endpoint. Never used with --public-address: a fixed
// address stays fixed. Level-triggered: each check compares the interface with the address in
// use and with the endpoint in etcd, and a check that cannot finish — no address to take yet,
// etcd away — is retried until the three agree. Emits; the daemon logs and re-plans.

import { EventEmitter } from 'node:events'
import type { Rtnl } from '../dataplane/rtnl'
import { findUnderlay, isUnderlayError, type Underlay, type UnderlayError } from '../dataplane/underlay'
import { UnderlayWatch, type UnderlayWatchOptions } from '../dataplane/underlay-watch'
import { formatEndpoint } from '../store/endpoint'
import type { NodeLease } from '../store/node-lease'
import { backoffDelay } from './reconciler'

export interface UnderlayFollowOptions {
  rtnl: Rtnl
  /** --public-interface; absent: the default route's interface. */
  interface?: string
  /** Where the endpoint is published (and what is published now). */
  lease: Pick<NodeLease, 'publish' | 'record'>
  /** The endpoint's port (the WireGuard port, whatever the backend). */
  port: number
  /** The underlay in use when following starts. */
  underlay: Underlay
  watch?: UnderlayWatchOptions
  /** Delays between checks that could not finish. Default 250 ms doubling to 2 s. */
  retry?: { initialMs: number, maxMs: number }
}

export interface UnderlayMove { from: Underlay, to: Underlay }

export interface UnderlayFollowEvents {
  /**
   * The address in use left the interface and the interface has another. Emitted before the new
   * endpoint is published, and listeners run synchronously: they can make the etcd client drop
   * its connections from the old address first.
   */
  moved: [UnderlayMove]
  /** The new endpoint is in the node's record (generation grew). */
  published: [{ from: string, to: string, generation: number }]
  /** The address in use is gone and there is none to take yet: it is kept meanwhile. Once per streak. */
  waiting: [{ underlay: Underlay, error: UnderlayError }]
  /** Publishing the new endpoint failed; retried in `retryInMs`. */
  publishFailed: [{ error: unknown, endpoint: string, retryInMs: number }]
  /** Reading the node's addresses failed; retried in `retryInMs`. */
  checkFailed: [{ error: unknown, retryInMs: number }]
}

export class UnderlayFollower extends EventEmitter<UnderlayFollowEvents> {
  private current: Underlay
  private watch: UnderlayWatch | undefined
  private running: Promise<void> | undefined
  private again = false
  private waiting = false
  private failures = 0
  private retryTimer: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly o: UnderlayFollowOptions) {
    super()
    this.current = o.underlay
  }

  /** The underlay the data plane should use now. */
  get underlay (): Underlay { return this.current }

  /** Opens the netlink watch and runs a first check (the address may have moved since the start). */
  start (): void {
    this.watch = UnderlayWatch.open(this.o.watch)
    this.watch.on('changed', () => this.check())
    this.check()
  }

  /** Asks for a check; checks never overlap, and one asked for during a check runs after it. */
  check (): void {
    if (this.stopped) return
    this.again = true
    this.running ??= this.run().finally(() => { this.running = undefined })
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.watch?.close()
    this.clearRetry()
    await this.running
  }

  private async run (): Promise<void> {
    while (this.again && !this.stopped) {
      this.again = false
      this.clearRetry()
      const settled = await this.checkOnce()
      if (settled) this.failures = 0
      else if (!this.again && !this.stopped) this.scheduleRetry()
    }
  }

  /** One comparison of interface, address in use and published endpoint; true when they agree. */
  private async checkOnce (): Promise<boolean> {
    let found: Underlay
    try {
      found = await findUnderlay(this.o.rtnl, this.o.interface !== undefined ? { interface: this.o.interface } : {}, { keep: this.current.ip })
    } catch (e) {
      if (!isUnderlayError(e)) {
        this.emit('checkFailed', { error: e, retryInMs: this.nextDelay() })
        return false
      }
      if (!this.waiting) this.emit('waiting', { underlay: this.current, error: e })
      this.waiting = true
      return false
    }
    this.waiting = false
    if (found.ip !== this.current.ip) {
      const move = { from: this.current, to: found }
      this.current = found
      this.emit('moved', move)
    }
    const endpoint = formatEndpoint({ ip: this.current.ip, port: this.o.port })
    const published = this.o.lease.record.endpoint
    if (published === endpoint) return true
    try {
      const record = await this.o.lease.publish({ endpoint })
      this.emit('published', { from: published, to: endpoint, generation: record.generation })
      return true
    } catch (e) {
      this.emit('publishFailed', { error: e, endpoint, retryInMs: this.nextDelay() })
      return false
    }
  }

  /** The delay the next retry will use (reported with the failure, then used by scheduleRetry). */
  private nextDelay (): number {
    return backoffDelay(this.failures + 1, this.o.retry ?? { initialMs: 250, maxMs: 2000 })
  }

  private scheduleRetry (): void {
    const delay = this.nextDelay()
    this.failures++
    this.retryTimer = setTimeout(() => { this.retryTimer = undefined; this.check() }, delay)
    this.retryTimer.unref()
  }

  private clearRetry (): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
  }
}

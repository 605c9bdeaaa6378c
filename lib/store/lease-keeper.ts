// One etcd lease kept alive by podmesh itself: grant, a keepalive every TTL/3 (one short
// keepalive stream per tick, with a deadline), retries with capped backoff while etcd is away,
// 'lost' only when etcd says the lease is gone (TTL 0), release and revoke.
//
// Why not etcd3's Lease: its keepalive re-arms a TTL-long timer when a response arrives after
// release(), which keeps a process alive for up to the TTL (an hour) after the node closed, and
// it declares a lease lost after 2×TTL of silence even when etcd, restarted, still holds it.
// Library code: emits, never logs.
import { EventEmitter } from 'node:events'
import { type StoreClient, StoreError, storeCall, storeError } from './client'
import { Backoff, type BackoffOptions } from './backoff'

export interface LeaseKeeperOptions {
  /** Deadline of each keepalive round trip. Default 5000 ms. */
  callTimeoutMs?: number
  /** Delays between failed keepalives. Default 100 ms doubling up to min(5 s, TTL/3). */
  retry?: BackoffOptions
}

export interface LeaseKeeperEvents {
  /** etcd no longer knows the lease (expired or revoked): its keys are gone. */
  lost: [StoreError]
  /** A keepalive failed (etcd unreachable); retrying. */
  keepaliveFailed: [StoreError]
  keepaliveSucceeded: []
}

export class LeaseKeeper extends EventEmitter<LeaseKeeperEvents> {
  readonly ttlSeconds: number
  private readonly client: StoreClient
  private readonly callTimeoutMs: number
  private readonly backoff: Backoff
  private leaseId = ''
  private timer: NodeJS.Timeout | undefined
  private active = false

  constructor (client: StoreClient, ttlSeconds: number, o: LeaseKeeperOptions = {}) {
    super()
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new RangeError(`lease TTL must be a positive integer, got ${ttlSeconds}`)
    this.client = client
    this.ttlSeconds = ttlSeconds
    this.callTimeoutMs = o.callTimeoutMs ?? 5000
    this.backoff = new Backoff({ initialMs: 100, maxMs: Math.min(5000, this.intervalMs()), ...o.retry })
  }

  /** The lease ID (decimal string); '' before grant. */
  get id (): string { return this.leaseId }
  get alive (): boolean { return this.active }

  /** Grants the lease and starts keeping it alive. */
  async grant (): Promise<string> {
    const res = await storeCall(`grant lease (TTL ${this.ttlSeconds} s)`, async () => await this.client.leaseClient.leaseGrant({ TTL: this.ttlSeconds }))
    this.leaseId = res.ID
    this.active = true
    this.schedule(this.intervalMs())
    return res.ID
  }

  /** Stops the keepalives; etcd expires the lease (and its keys) at TTL. */
  release (): void {
    this.active = false
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Stops the keepalives and revokes the lease: its keys are deleted at once. */
  async revoke (): Promise<void> {
    this.release()
    if (this.leaseId === '') return
    await storeCall(`revoke lease ${this.leaseId}`, async () => {
      await this.client.leaseClient.leaseRevoke({ ID: this.leaseId })
    }).catch((e: StoreError) => {
      if (e.kind !== 'leaseLost') throw e // already gone: that is what we wanted
    })
  }

  private intervalMs (): number {
    return Math.max(500, Math.floor((this.ttlSeconds * 1000) / 3))
  }

  private schedule (ms: number): void {
    if (!this.active) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.tick().catch(() => {})
    }, ms)
    // Keeping a lease alive is not a reason for a process to stay up; its owner's work is.
    this.timer.unref()
  }

  private async tick (): Promise<void> {
    if (!this.active) return
    let ttl: string
    try {
      ttl = await this.keepaliveOnce()
    } catch (e) {
      if (!this.active) return
      const err = storeError(`keepalive lease ${this.leaseId}`, e)
      // A closed client never answers again: stop rather than keep the process alive retrying.
      if (err.kind === 'closed') this.active = false
      this.emit('keepaliveFailed', err)
      this.schedule(this.backoff.next())
      return
    }
    if (!this.active) return
    if (ttl === '0') {
      this.active = false
      this.emit('lost', new StoreError('leaseLost', `keepalive lease ${this.leaseId}`, 'etcd no longer has the lease (expired or revoked)'))
      return
    }
    this.backoff.reset()
    this.emit('keepaliveSucceeded')
    this.schedule(this.intervalMs())
  }

  /** One round trip on a short-lived keepalive stream; resolves to the TTL etcd reports. */
  private async keepaliveOnce (): Promise<string> {
    const stream = await this.client.leaseClient.leaseKeepAlive({ deadline: Date.now() + this.callTimeoutMs })
    return await new Promise<string>((resolve, reject) => {
      stream.on('data', res => { resolve(res.TTL); stream.end() })
      stream.on('error', reject)
      stream.on('end', () => reject(new StoreError('unavailable', 'keepalive', 'keepalive stream ended without an answer')))
      stream.write({ ID: this.leaseId })
    })
  }
}

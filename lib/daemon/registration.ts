// The node's hold on its own registration (its record and subnet leases in etcd) as part of its
// desired state, level-triggered like the data plane: the watch's view, a resync or an etcd
// restore raises a doubt; a check re-reads the node's keys and writes again what someone else
// deleted or altered (NodeLease.reassert), with backoff between writes so two writers never
// spin. While the registration is not held the daemon is not ready and prunes nothing: its view
// of etcd may be empty or partial. A subnet another node took meanwhile is reported as `taken`
// and checked again with backoff; what to do about it is the daemon's policy.

import { EventEmitter } from 'node:events'
import { isDeepStrictEqual } from 'node:util'
import type { NodeRecord } from '../store/node-record'
import type { NodeLease } from '../store/node-lease'
import { Backoff } from '../store/backoff'
import { isLeaseError, type LeaseError } from '../store/lease-error'

export type RegistrationState =
  | 'held' // etcd holds the record and subnet leases this node published
  | 'doubted' // the watch or an etcd restore says otherwise; a check is under way
  | 'lost' // the etcd lease is gone; the same subnets are being re-acquired
  | 'taken' // another node holds one of this node's subnets

export interface RegistrationEvents {
  state: [{ state: RegistrationState, detail: string }]
  /** The keys were written again: re-asserted on the live lease, or re-acquired on a new one. */
  reasserted: [{ generation: number, how: 'reasserted' | 'reacquired' }]
  taken: [LeaseError]
  /** A check could not run (etcd away, a race lost); it is tried again. */
  checkFailed: [unknown]
}

const HELD = 'record and subnet leases held'

/** Same content: the record as the watch parsed it and as this node published it (field order differs). */
const sameRecord = (a: NodeRecord, b: NodeRecord): boolean => a === b || isDeepStrictEqual(a, b)

export class Registration extends EventEmitter<RegistrationEvents> {
  private current: RegistrationState = 'held'
  private why = HELD
  private running = false
  private queued: { force: boolean } | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly backoff = new Backoff({ initialMs: 100, maxMs: 5000 })
  private stopped = false

  constructor (private readonly lease: NodeLease) {
    super()
    lease.on('lost', () => this.set('lost', 'etcd lease lost; re-acquiring the same subnets'))
    lease.on('reacquired', rec => {
      this.set('held', HELD)
      this.emit('reasserted', { generation: rec.generation, how: 'reacquired' })
    })
    lease.on('reacquireFailed', (e, retrying) => {
      if (isLeaseError(e) && e.problem === 'subnetTaken') {
        this.set('taken', e.message)
        this.emit('taken', e)
      }
      // The lease gives up on a taken subnet; keep checking, the holder may let go of it.
      if (!retrying) this.check()
    })
  }

  get state (): RegistrationState { return this.current }
  get held (): boolean { return this.current === 'held' }
  get detail (): string { return this.why }

  /** The watch's view of this node's record (undefined: absent or rejected). No I/O: a doubt schedules a check. */
  observe (own: NodeRecord | undefined): void {
    if (own !== undefined && sameRecord(own, this.lease.record)) {
      if (this.current !== 'held') this.check()
      return
    }
    // A newer generation is most likely this node's own publish, seen by the watch before the
    // write's answer arrived: check it, without doubting (and going not ready) meanwhile.
    const ownPublishInFlight = own !== undefined && own.generation > this.lease.record.generation
    if (this.current === 'held' && !ownPublishInFlight) {
      this.set('doubted', own === undefined
        ? 'own record missing from etcd (deleted, or its subnet leases are); re-asserting'
        : `own record in etcd differs from what this node published (generation ${own.generation}); re-asserting`)
    }
    this.check()
  }

  /** etcd came back from an older snapshot or as another cluster: hold nothing until re-written. */
  restored (detail: string): void {
    this.set('doubted', detail)
    this.check(true)
  }

  /** Asks for a check (a re-read of the node's keys); `force` writes them even when intact. */
  check (force = false): void {
    if (this.stopped) return
    this.queued = { force: force || (this.queued?.force ?? false) }
    // A pending timer is the backoff after a write or a failure: the check waits for it.
    if (this.running || this.timer !== undefined) return
    void this.run()
  }

  stop (): void {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.removeAllListeners()
  }

  private async run (): Promise<void> {
    const job = this.queued
    this.queued = undefined
    if (job === undefined || this.stopped) return
    this.running = true
    let delay: number | undefined
    try {
      const hold = await this.lease.reassert({ force: job.force })
      if (hold === 'lost') {
        this.set('lost', 'etcd lease lost; re-acquiring the same subnets')
        delay = this.backoff.next()
      } else {
        this.set('held', HELD)
        if (hold === 'reasserted') {
          this.emit('reasserted', { generation: this.lease.record.generation, how: 'reasserted' })
          delay = this.backoff.next() // another writer fighting over the record meets a slowing loop
        } else {
          this.backoff.reset()
        }
      }
    } catch (e) {
      if (isLeaseError(e) && e.problem === 'closed') { this.running = false; return }
      if (isLeaseError(e) && e.problem === 'subnetTaken') {
        this.set('taken', e.message)
        this.emit('taken', e)
      } else {
        this.emit('checkFailed', e)
      }
      this.queued ??= job
      delay = this.backoff.next()
    }
    this.running = false
    if (this.stopped) return
    if (delay !== undefined) {
      this.timer = setTimeout(() => { this.timer = undefined; void this.run() }, delay)
      this.timer.unref()
    } else if (this.queued !== undefined) {
      void this.run()
    }
  }

  private set (state: RegistrationState, detail: string): void {
    if (state === this.current && detail === this.why) return
    this.current = state
    this.why = detail
    this.emit('state', { state, detail })
  }
}

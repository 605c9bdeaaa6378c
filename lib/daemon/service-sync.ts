// Keeps this node's service rules (table inet podmesh) equal to what etcd says (issue #11):
// services/ and pods/ read once and then followed change by change (service-inputs.ts), the pods
// judged against the node records (pod-trust.ts), the endpoints resolved, the ruleset computed
// (one builder across passes: an unchanged service's part is reused), and one `nft -f` brings the
// kernel there — a diff against the last ruleset that landed, or a full sync when that is unknown
// (the first pass, after a failed apply, after the table went missing) or an hour old (drift
// inside the table). Each pass works from the whole in-memory view: watch events, node record
// changes, a periodic resync (which also checks the table is there) and retries after a failure
// all run the same pass, serialized and coalesced. Library code: it emits, never logs.
import { EventEmitter } from 'node:events'
import type { StoreClient } from '../store/client'
import { Backoff, type BackoffOptions } from '../store/backoff'
import { podKey } from '../store/service-keys'
import { watchServiceInputs } from '../store/service-watch'
import { ServiceInputs } from '../store/service-inputs'
import { applyServiceRules, serviceTableExists, type ApplyKind } from '../dataplane/nft/apply'
import { resolveEndpoints } from '../service/endpoints'
import type { ServiceRuleset } from '../service/rules'
import { RulesetBuilder } from '../service/ruleset'
import { trustedPods, type NodeSubnets } from '../service/pod-trust'

export const DEFAULT_FULL_SYNC_MS = 3_600_000

export type ServiceSyncReason = 'start' | 'watch' | 'nodes' | 'resync' | 'retry'

export interface ServiceSyncOptions {
  client: StoreClient
  prefix: string
  node: string
  /** The pod subnets of every node with an accepted record (the daemon's current view). */
  nodeSubnets: () => NodeSubnets
  /** This node's underlay addresses per family: where NodePorts answer. */
  nodeAddresses: () => { 4?: readonly string[], 6?: readonly string[] }
  /** Period of the pass that re-reads etcd and checks the table exists. */
  resyncIntervalMs: number
  /**
   * A pass after this long since the last full sync is a full sync: a change made by hand inside
   * the table (an element deleted) is repaired then; `podmeshctl diff` shows it meanwhile.
   * Default 1 h, kube-proxy's choice for its nftables mode: a full sync of 10,000 services costs seconds.
   */
  fullSyncIntervalMs?: number
  /** Triggers within this window make one pass. Default 10 ms. */
  coalesceMs?: number
  /** Delays before a failed pass or watch is tried again. Default 100 ms → 5 s. */
  retryBackoff?: BackoffOptions
}

export interface ServiceSyncApplied {
  reason: ServiceSyncReason
  kind: ApplyKind
  services: number
  endpoints: number
  durationMs: number
}

export interface ServiceSyncEvents {
  /** A pass that ended with the kernel equal to etcd (kind 'none': nothing to change). */
  applied: [ServiceSyncApplied]
  /** A value skipped (a bad service or pod record, a pod outside its node's subnets): once while it stays the same. */
  skipped: [{ key: string, reason: string }]
  /** The table was gone at a resync (someone deleted it): the pass re-creates it whole. */
  drift: []
  /** A pass or the watch failed; tried again after `retryInMs`. */
  failed: [{ step: 'apply' | 'watch', error: Error, retryInMs: number }]
}

export class ServiceSync extends EventEmitter<ServiceSyncEvents> {
  private readonly o: ServiceSyncOptions
  private readonly passBackoff: Backoff
  private readonly watchBackoff: Backoff
  private readonly stopper = new AbortController()
  /** The ruleset the kernel holds, as far as we know; undefined when unknown (then a full sync). */
  private applied: ServiceRuleset | undefined
  private queue: Promise<void> = Promise.resolve()
  private pending: { timer: NodeJS.Timeout, reasons: Set<ServiceSyncReason> } | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private resyncTimer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined
  private watching: Promise<void> | undefined
  private reported = new Map<string, string>()
  private lastFullAt = 0
  /**
   * Kept across passes: an unchanged service's part of the ruleset is reused (compared field by
   * field, since each pass reads fresh objects from etcd), so a change costs what it changes.
   */
  private readonly builder = new RulesetBuilder()
  /** services/ and pods/ as last read and watched: a pass reads them from memory. */
  private readonly inputs: ServiceInputs

  constructor (o: ServiceSyncOptions) {
    super()
    this.o = o
    this.inputs = new ServiceInputs(o.client, o.prefix)
    this.passBackoff = new Backoff(o.retryBackoff)
    this.watchBackoff = new Backoff(o.retryBackoff)
  }

  get stopped (): boolean { return this.stopper.signal.aborted }

  /** Watches etcd and runs the first pass; then one per change and per resync interval. */
  start (): void {
    if (this.watching !== undefined || this.stopped) return
    this.watching = this.watch()
    this.resyncTimer = setInterval(() => this.trigger('resync'), this.o.resyncIntervalMs)
    this.resyncTimer.unref()
  }

  /** Asks for a pass soon (coalesced with others). */
  trigger (reason: ServiceSyncReason): void {
    if (this.stopped) return
    if (this.pending !== undefined) { this.pending.reasons.add(reason); return }
    const reasons = new Set([reason])
    const timer = setTimeout(() => {
      this.pending = undefined
      this.queue = this.queue.then(async () => await this.pass(reasons))
    }, this.o.coalesceMs ?? 10)
    this.pending = { timer, reasons }
  }

  /** One pass now, serialized with the others; resolves when it ended (applied or failed). */
  async sync (): Promise<void> {
    const p = this.queue.then(async () => await this.pass(new Set(['start'])))
    this.queue = p
    await p
  }

  async stop (): Promise<void> {
    this.stopper.abort()
    if (this.pending !== undefined) clearTimeout(this.pending.timer)
    this.pending = undefined
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    if (this.resyncTimer !== undefined) clearInterval(this.resyncTimer)
    this.wake?.()
    await this.watching
    await this.queue
  }

  /** The last ruleset that landed (podmeshctl-like readers and tests). */
  get current (): ServiceRuleset | undefined { return this.applied }

  /** Reads services/ and pods/, asks for a pass, watches from there; a failed or compacted watch starts over. */
  private async watch (): Promise<void> {
    while (!this.stopped) {
      try {
        const revision = await this.inputs.load()
        this.trigger('start')
        const outcome = await watchServiceInputs(this.o.client, this.o.prefix, {
          fromRevision: revision + 1n,
          signal: this.stopper.signal,
          onChange: (_revision, events) => { this.inputs.apply(events); this.watchBackoff.reset(); this.trigger('watch') }
        })
        if (outcome === 'stopped') return
      } catch (e) {
        if (this.stopped) return
        const retryInMs = this.watchBackoff.next()
        this.emit('failed', { step: 'watch', error: e as Error, retryInMs })
        await this.sleep(retryInMs)
      }
    }
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, ms)
      this.wake = () => { clearTimeout(timer); resolve() }
    })
    this.wake = undefined
  }

  private async pass (reasons: ReadonlySet<ServiceSyncReason>): Promise<void> {
    if (this.stopped) return
    const reason = [...reasons][0] ?? 'start'
    try {
      await this.passOnce(reason, reasons.has('resync'))
      this.passBackoff.reset()
    } catch (e) {
      if (this.stopped) return
      // What the kernel holds is unknown now: the retry is a full sync, which also repairs it.
      this.applied = undefined
      const retryInMs = this.passBackoff.next()
      this.emit('failed', { step: 'apply', error: e as Error, retryInMs })
      if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
      this.retryTimer = setTimeout(() => this.trigger('retry'), retryInMs)
    }
  }

  private async passOnce (reason: ServiceSyncReason, checkTable: boolean): Promise<void> {
    const t0 = Date.now()
    const { prefix, node } = this.o
    const skipped: Array<[string, string]> = [...this.inputs.skipped()]
    const services = this.inputs.serviceList()
    const { accepted, rejected } = trustedPods(this.inputs.podList(), this.o.nodeSubnets())
    for (const r of rejected) skipped.push([podKey(prefix, r.pod.node, r.pod.id), r.reason])
    this.report(skipped)
    const endpoints = resolveEndpoints(services, accepted, node)
    const next = this.builder.build({ services, endpoints, node, nodeAddresses: this.o.nodeAddresses() })
    if (this.stopped) return
    if (checkTable && this.applied !== undefined && !(await serviceTableExists())) {
      this.applied = undefined
      this.emit('drift')
    }
    if (Date.now() - this.lastFullAt >= (this.o.fullSyncIntervalMs ?? DEFAULT_FULL_SYNC_MS)) this.applied = undefined
    const previous = this.applied
    // Unknown until this apply is known to have landed.
    this.applied = undefined
    const kind = await applyServiceRules(next, previous)
    this.applied = next
    if (kind === 'full') this.lastFullAt = Date.now()
    let count = 0
    for (const eps of endpoints.values()) count += eps.length
    this.emit('applied', { reason, kind, services: services.length, endpoints: count, durationMs: Date.now() - t0 })
  }

  /** Says each skipped value once while it stays skipped for the same reason. */
  private report (skipped: ReadonlyArray<[string, string]>): void {
    const now = new Map(skipped)
    for (const [key, reason] of now) {
      if (this.reported.get(key) !== reason) this.emit('skipped', { key, reason })
    }
    this.reported = now
  }
}

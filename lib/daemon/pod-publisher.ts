// Publishes the node's pods: makes pods/<node>/<id> in etcd equal to the reports in the node's
// pod spool (written by the podmesh CNI plugin), on the node's lease, so a dead node's endpoints
// go with it. Level-triggered: every pass reads the whole spool and the node's whole pods/
// directory; passes run at start, on spool changes (coalesced), on a timer, after a failure
// (with backoff) and on trigger(). A pod added while podmeshd was down is published on its
// return. Library code: it emits, never logs.
import { EventEmitter } from 'node:events'
import type { StoreClient } from '../store/client'
import { readNodePods, writeNodePods } from '../store/node-pods'
import { Backoff, type BackoffOptions } from '../store/backoff'
import { readPodSpool, watchPodSpool, type BadPodFile, type SpoolWatch } from '../dataplane/pod-spool'
import { podRecordOf } from '../cni-plugin/pod-report'
import { isServiceValueError, podValueText } from '../service/service-value'
import { planPodKeys } from './pod-publish-plan'

export interface PodPublisherOptions {
  client: StoreClient
  prefix: string
  node: string
  /** The spool the CNI plugin writes: its conflist entry's podDir (DEFAULT_POD_DIR). */
  dir: string
  /** The lease the node's keys hang on now (NodeLease.leaseId while NodeLease.held); undefined: none now, the pass waits. */
  leaseId: () => string | undefined
  /** Full pass period. Default 30 s. */
  resyncIntervalMs?: number
  /** Spool events within this window make one pass. Default 50 ms. */
  coalesceMs?: number
  /** Delays before a failed pass is tried again. Default 100 ms → 5 s. */
  retryBackoff?: BackoffOptions
}

export interface PodSyncResult {
  /** True when no lease was held: nothing was read or written. */
  waiting: boolean
  /** Reports in the spool (valid ones). */
  pods: number
  /** Container IDs written (new, changed, or moved to the current lease) and deleted. */
  put: string[]
  deleted: string[]
  bad: BadPodFile[]
}

export interface PodPublisherEvents {
  /** A pass that changed etcd. */
  published: [PodSyncResult]
  /** A bad spool file, once while it stays the same bad file. */
  badFile: [BadPodFile]
  /** A pass failed (etcd, the spool) or the spool watch ended; retried with backoff. */
  failed: [Error]
}

export const DEFAULT_POD_RESYNC_MS = 30_000

export class PodPublisher extends EventEmitter<PodPublisherEvents> {
  private readonly o: PodPublisherOptions
  private readonly backoff: Backoff
  private queue: Promise<unknown> = Promise.resolve()
  private started = false
  private stopped = false
  private watcher: SpoolWatch | undefined
  private passTimer: NodeJS.Timeout | undefined
  private resyncTimer: NodeJS.Timeout | undefined
  private reported = new Set<string>()

  constructor (o: PodPublisherOptions) {
    super()
    this.o = o
    this.backoff = new Backoff(o.retryBackoff)
  }

  /** One full pass now (serialized with any other); throws what failed. */
  async sync (): Promise<PodSyncResult> {
    const p = this.queue.then(async () => await this.pass())
    this.queue = p.catch(() => {})
    return await p
  }

  /** Watches the spool, runs a first pass and then one per resync interval. */
  start (): void {
    if (this.started) return
    this.started = true
    this.resyncTimer = setInterval(() => this.trigger(), this.o.resyncIntervalMs ?? DEFAULT_POD_RESYNC_MS)
    this.resyncTimer.unref()
    this.trigger(0)
  }

  /** Asks for a pass soon (coalesced with others): after the lease was re-acquired, say. */
  trigger (delayMs = this.o.coalesceMs ?? 50): void {
    if (this.stopped || this.passTimer !== undefined) return
    this.passTimer = setTimeout(() => {
      this.passTimer = undefined
      void this.run()
    }, delayMs)
    this.passTimer.unref()
  }

  /** Stops watching and timers; waits for a pass under way. The keys stay (they live on the lease). */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.passTimer !== undefined) clearTimeout(this.passTimer)
    if (this.resyncTimer !== undefined) clearInterval(this.resyncTimer)
    this.passTimer = undefined
    this.resyncTimer = undefined
    this.watcher?.close()
    this.watcher = undefined
    await this.queue
  }

  private async run (): Promise<void> {
    if (this.stopped) return
    try {
      await this.ensureWatch()
      const r = await this.sync()
      // No lease now (being re-acquired): look again soon rather than at the next resync.
      if (r.waiting) { this.trigger(this.backoff.next()); return }
      this.backoff.reset()
      if (r.put.length > 0 || r.deleted.length > 0) this.emit('published', r)
    } catch (e) {
      if (this.stopped) return
      this.emit('failed', e as Error)
      this.trigger(this.backoff.next())
    }
  }

  private async ensureWatch (): Promise<void> {
    if (this.watcher !== undefined || this.stopped) return
    this.watcher = await watchPodSpool(this.o.dir, () => this.trigger(), e => {
      this.watcher = undefined
      this.emit('failed', e)
      this.trigger(this.backoff.next())
    })
    if (this.stopped) { this.watcher.close(); this.watcher = undefined }
  }

  private async pass (): Promise<PodSyncResult> {
    const { client, prefix, node, dir } = this.o
    const leaseId = this.o.leaseId()
    if (leaseId === undefined || leaseId === '' || leaseId === '0') return { waiting: true, pods: 0, put: [], deleted: [], bad: [] }
    const spool = await readPodSpool(dir)
    // The value every reader of pods/ checks (podValueText parses it back): a report that passed
    // the spool's checks but not the readers' is bad too, never published.
    const desired = new Map<string, string>()
    for (const r of spool.reports) {
      try {
        desired.set(r.id, podValueText(podRecordOf(r, node)))
      } catch (e) {
        if (!isServiceValueError(e)) throw e
        spool.bad.push({ file: `${dir}/${r.id}.json`, problem: e.message })
      }
    }
    this.reportBad(spool.bad)
    const stored = await readNodePods(client, prefix, node)
    const plan = planPodKeys(desired, stored, leaseId)
    if (plan.put.length > 0 || plan.del.length > 0) await writeNodePods(client, prefix, node, { leaseId, ...plan })
    return { waiting: false, pods: desired.size, put: plan.put.map(p => p.id), deleted: plan.del, bad: spool.bad }
  }

  private reportBad (bad: readonly BadPodFile[]): void {
    const now = new Set(bad.map(b => `${b.file}\n${b.problem}`))
    for (const b of bad) if (!this.reported.has(`${b.file}\n${b.problem}`)) this.emit('badFile', b)
    this.reported = now
  }
}

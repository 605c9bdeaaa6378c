// The reconcile loop's driver: one reconcile at a time, triggers coalesced, a periodic resync
// that repairs drift, and a failed apply retried with capped exponential backoff. It knows
// nothing of WireGuard or etcd: `run` does one full desired → observe → plan → apply pass.
// It emits events; the daemon logs and counts them.
//
// A pass that exceeds the pass deadline counts as failed and is retried with backoff like any
// other failure: one stuck kernel call must not stall the node forever. The stuck promise
// cannot be cancelled from outside, so it is abandoned (its signal is aborted; its late result
// is ignored) and the retry runs beside it. That breaks single-flight only for a pass that is
// already lost, and it is safe because every pass re-plans from the full snapshot: whatever the
// abandoned pass still writes, the next pass reads back and repairs. `abandonedPasses` says how
// many such passes have not settled yet (readiness reports it).

import { EventEmitter } from 'node:events'
import { mergeReasons, type ReconcileReason } from './reconcile-reason'

export interface ReconcileResult {
  /** One line per change applied (empty: the kernel already matched). */
  changes: string[]
}

export interface ReconcilerOptions {
  /** One pass. `signal` aborts when the pass exceeded its deadline and was abandoned. */
  run: (reason: ReconcileReason, signal: AbortSignal) => Promise<ReconcileResult>
  resyncIntervalMs: number
  /** A pass still running after this long fails (PassDeadlineError) and is retried; default 60 s. */
  passDeadlineMs?: number
  /**
   * A token bucket for passes: up to `passBurst` (default 10) at once, refilled at
   * `passesPerSecond` (default 20). A record flapping at any rate costs at most burst + 20/s
   * passes (and `wg` spawns, and status triggers); an ordinary change never waits for it.
   */
  passesPerSecond?: number
  passBurst?: number
  /** Triggers arriving within this window share one pass. */
  coalesceMs?: number
  backoff?: { initialMs: number, maxMs: number }
}

export interface ReconcilerEvents {
  applied: [{ reason: ReconcileReason, changes: string[], durationMs: number, triggeredAt: number }]
  failed: [{ reason: ReconcileReason, error: unknown, attempt: number, retryInMs: number }]
}

export class PassDeadlineError extends Error {
  readonly code = 'EPASSDEADLINE'
  constructor (readonly deadlineMs: number) {
    super(`reconcile pass still running after ${deadlineMs} ms; abandoned, will retry`)
    this.name = 'PassDeadlineError'
  }
}
export const isPassDeadlineError = (e: unknown): e is PassDeadlineError => e instanceof PassDeadlineError

/** Capped exponential backoff as a value: the delay before retry number `attempt` (1-based). */
export function backoffDelay (attempt: number, b: { initialMs: number, maxMs: number }): number {
  return Math.min(b.maxMs, b.initialMs * 2 ** Math.max(0, attempt - 1))
}

export class Reconciler extends EventEmitter<ReconcilerEvents> {
  private readonly opts: Required<ReconcilerOptions>
  private running = false
  private pending: { reason: ReconcileReason, at: number } | undefined
  private timer: NodeJS.Timeout | undefined
  private resync: NodeJS.Timeout | undefined
  private failures = 0
  private stopped = false
  private idle: Array<() => void> = []
  private abandoned = 0
  private lastApplied: number | undefined
  private tokens: number
  private refilledAt = Date.now()

  constructor (opts: ReconcilerOptions) {
    super()
    this.opts = { coalesceMs: 5, backoff: { initialMs: 200, maxMs: 10_000 }, passDeadlineMs: 60_000, passesPerSecond: 20, passBurst: 10, ...opts }
    this.tokens = this.opts.passBurst
  }

  start (): void {
    this.resync = setInterval(() => this.trigger('resync'), this.opts.resyncIntervalMs)
    this.resync.unref()
  }

  /**
   * Asks for a pass; returns at once. The first trigger's time is kept for the convergence lag;
   * the merged reason keeps a kernel read that any of the coalesced triggers asked for.
   */
  trigger (reason: ReconcileReason, delayMs = this.opts.coalesceMs): void {
    if (this.stopped) return
    this.pending = this.pending === undefined
      ? { reason, at: Date.now() }
      : { reason: mergeReasons(this.pending.reason, reason), at: this.pending.at }
    if (this.running) return // picked up when the current pass ends
    if (this.timer !== undefined) {
      // An error retry may be scheduled far out; a new trigger must not wait for it.
      if (delayMs >= this.opts.coalesceMs) return
      clearTimeout(this.timer)
    }
    this.timer = setTimeout(() => { void this.pass() }, delayMs)
  }

  get consecutiveFailures (): number { return this.failures }
  /** Passes that exceeded the deadline and have not settled since. */
  get abandonedPasses (): number { return this.abandoned }
  /** When (epoch ms) the last pass completed; undefined before the first. */
  get lastAppliedAt (): number | undefined { return this.lastApplied }

  /** Resolves when no pass is running or scheduled (tests and shutdown). */
  async settled (): Promise<void> {
    if (!this.running && this.timer === undefined) return
    await new Promise<void>(resolve => this.idle.push(resolve))
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.resync !== undefined) clearInterval(this.resync)
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
    if (this.running) await new Promise<void>(resolve => this.idle.push(resolve))
  }

  /** Takes a token and returns 0, or returns how long until one is there. */
  private takePassToken (now: number): number {
    const { passesPerSecond: rate, passBurst: burst } = this.opts
    this.tokens = Math.min(burst, this.tokens + (now - this.refilledAt) * rate / 1000)
    this.refilledAt = now
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.ceil((1 - this.tokens) * 1000 / rate)
  }

  private async pass (): Promise<void> {
    this.timer = undefined
    const job = this.pending
    this.pending = undefined
    if (job === undefined || this.stopped) return this.wake()
    const wait = this.takePassToken(Date.now())
    if (wait > 0) {
      // The bucket is empty: the job waits (and absorbs every trigger meanwhile).
      this.pending = job
      this.timer = setTimeout(() => { void this.pass() }, wait)
      return
    }
    this.running = true
    const started = Date.now()
    try {
      const result = await this.runWithDeadline(job.reason)
      this.failures = 0
      this.lastApplied = Date.now()
      this.emit('applied', { reason: job.reason, changes: result.changes, durationMs: Date.now() - started, triggeredAt: job.at })
    } catch (error) {
      this.failures++
      const retryInMs = backoffDelay(this.failures, this.opts.backoff)
      this.emit('failed', { reason: job.reason, error, attempt: this.failures, retryInMs })
      // Level-triggered: the retry re-plans from the full snapshot, whatever changed meanwhile.
      this.pending = { reason: 'retry', at: job.at }
      this.running = false
      if (!this.stopped) this.timer = setTimeout(() => { void this.pass() }, retryInMs)
      return this.wake()
    }
    this.running = false
    if (this.pending !== undefined && !this.stopped) this.timer = setTimeout(() => { void this.pass() }, 0)
    this.wake()
  }

  private async runWithDeadline (reason: ReconcileReason): Promise<ReconcileResult> {
    const abort = new AbortController()
    const running = this.opts.run(reason, abort.signal)
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const e = new PassDeadlineError(this.opts.passDeadlineMs)
        this.abandoned++
        running.then(() => {}, () => {}).finally(() => { this.abandoned-- })
        abort.abort(e)
        reject(e)
      }, this.opts.passDeadlineMs)
    })
    try {
      return await Promise.race([running, deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  private wake (): void {
    if (this.running || this.timer !== undefined) return
    const idle = this.idle
    this.idle = []
    for (const f of idle) f()
  }
}

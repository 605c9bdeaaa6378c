// Keeps status/<node> current: a write after every reconcile pass (coalesced: one in flight,
// one pending) and at least every `intervalMs`, on the StatusPublisher's short lease. While etcd
// is away writes fail; each failure goes to `onError` (the daemon counts it) and the next tick
// tries again — the stale or expired key is what `podmeshctl status` shows meanwhile.

import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { StoreClient } from '../store/client'
import { DEFAULT_STATUS_TTL, StatusPublisher } from '../store/status'
import { buildStatus, type StatusInput } from '../store/status-value'

export const DEFAULT_STATUS_INTERVAL_MS = 10_000

export interface StatusReportOptions {
  client: StoreClient
  prefix: string
  node: string
  /** The daemon's current view; undefined while there is nothing to report yet. */
  snapshot: () => Omit<StatusInput, 'node' | 'version'> | undefined
  onError: (e: unknown) => void
  intervalMs?: number
  ttlSeconds?: number
  /**
   * Writes start at least this far apart (default 1 s): status is for operators and
   * `podmeshctl status`, so a storm of passes costs etcd at most one write a second per node.
   */
  minGapMs?: number
}

export class StatusReport {
  private readonly publisher: StatusPublisher
  private readonly version = packageVersion()
  private timer: NodeJS.Timeout | undefined
  private inFlight: Promise<void> | undefined
  private pending = false
  private stopped = false
  private lastStart = -Infinity
  private gapTimer: NodeJS.Timeout | undefined

  constructor (private readonly o: StatusReportOptions) {
    this.publisher = new StatusPublisher(o.client, o.prefix, o.node, o.ttlSeconds ?? DEFAULT_STATUS_TTL)
  }

  start (): void {
    this.timer = setInterval(() => this.trigger(), this.o.intervalMs ?? DEFAULT_STATUS_INTERVAL_MS)
    this.trigger()
  }

  /** Asks for a write now; coalesces with one already running. */
  trigger (): void {
    if (this.stopped) return
    if (this.inFlight !== undefined) { this.pending = true; return }
    const wait = this.lastStart + (this.o.minGapMs ?? 1000) - Date.now()
    if (wait > 0) {
      this.gapTimer ??= setTimeout(() => { this.gapTimer = undefined; this.trigger() }, wait)
      return
    }
    this.lastStart = Date.now()
    this.inFlight = this.write().finally(() => {
      this.inFlight = undefined
      if (this.pending) { this.pending = false; this.trigger() }
    })
  }

  /** Stops writing and revokes the status lease (a stopped node observes nothing). */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    if (this.gapTimer !== undefined) clearTimeout(this.gapTimer)
    await this.inFlight
    try { await this.publisher.close() } catch (e) { this.o.onError(e) }
  }

  private async write (): Promise<void> {
    const s = this.o.snapshot()
    if (s === undefined) return
    try {
      await this.publisher.update(buildStatus({ ...s, node: this.o.node, version: this.version }, new Date()))
    } catch (e) {
      this.o.onError(e)
    }
  }
}

/** podmesh's version from its package.json (found upward from this file: lib/ or dist/lib/). */
export function packageVersion (): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'podmesh' && typeof pkg.version === 'string') return pkg.version
    } catch {}
    if (dirname(dir) === dir) return 'unknown'
  }
}

// Watches <prefix>config after start. podmeshd reads the config once and never applies a change
// live (docs/decisions.md, "Config changes"): this only tells it that etcd now holds another
// config, so it can say so (log, metric, status) instead of silently running the old one.
// Library code: emits events, logs nothing.
import { EventEmitter } from 'node:events'
import type { NetworkConfig } from '../config/network'
import { parseNetworkConfigJson } from '../config/network-parse'
import { type StoreClient, storeCall, storeError } from './client'
import { configKey } from './keys'
import { DEFAULT_SILENCE_PROBE, openWatchStream, runWatchSession } from './watch-stream'

/** The watch's ID on its stream (etcd ≥ 3.4 honours client-chosen IDs; a progress answer carries -1). */
const CONFIG_WATCH = '1'

export interface ConfigChange {
  /** Mod revision of the config key now in etcd; for a delete, the revision of the delete. */
  revision: string
  /** The new config, validated; absent when it was deleted or is invalid (see `error`). */
  config?: NetworkConfig
  deleted: boolean
  /** Why the new value is not a valid config. */
  error?: Error
}

export interface ConfigWatcherEvents {
  changed: [ConfigChange]
  /** The watch failed; the key is read and watched again (after `retryMs`, doubling up to 5 s). */
  error: [Error]
}

const MAX_RETRY_MS = 5000

/**
 * Its own watch stream, not etcd3's Watcher: etcd3 reconnects a broken stream, but drops a watch
 * that etcd cancels for good (and leaves it in its attach queue). Under auth etcd cancels a watch
 * whose token it does not know ("invalid auth token"): after an etcd restart, before it has
 * replayed the token from its log, or after --auth-token-ttl of silence. So every failure here
 * ends the session; the key is read (a unary call, for which etcd3 authenticates afresh when its
 * token was refused), what changed meanwhile is reported, and a new stream watches from there.
 */
export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  /** Mod revision of the last value reported (or the one the caller runs). */
  private seen = 0n
  /** Watch from after this revision. */
  private from = 0n
  /** The key was absent at the last report (a delete was reported). */
  private deleted = false
  private stopped = false
  private endSession: (() => void) | undefined
  private wake: (() => void) | undefined
  private running: Promise<void> | undefined

  /** `revision`: the config revision the caller runs; changes after it are reported. */
  constructor (private readonly o: { client: StoreClient, prefix: string, revision: string, retryMs?: number }) { super() }

  /** Resolves once the first watch is created in etcd, or has failed (and is being retried). */
  async start (): Promise<void> {
    this.seen = this.from = BigInt(this.o.revision)
    await new Promise<void>(resolve => {
      let first = true
      const once = (): void => { if (first) { first = false; resolve() } }
      this.running = this.run(once)
    })
  }

  private async run (started: () => void): Promise<void> {
    let delay = this.o.retryMs ?? 250
    let read = false
    while (!this.stopped) {
      try {
        if (read) await this.read()
        read = true
        const outcome = await this.session(() => { delay = this.o.retryMs ?? 250; started() })
        if (outcome === 'stopped') return
      } catch (e) {
        if (this.stopped) return
        this.emit('error', storeError('watch config', e))
        started()
        await new Promise<void>(resolve => { const t = setTimeout(resolve, delay); this.wake = () => { clearTimeout(t); resolve() } })
        this.wake = undefined
        delay = Math.min(delay * 2, MAX_RETRY_MS)
      }
    }
  }

  /** Reads the key: reports a change missed while nothing watched; the next watch starts after this read. */
  private async read (): Promise<void> {
    const res = await storeCall('get config', async () => await this.o.client.get(configKey(this.o.prefix)).exec())
    const kv = res.kvs[0]
    if (kv !== undefined) this.report({ revision: kv.mod_revision, deleted: false }, kv.value.toString())
    else if (!this.deleted) this.report({ revision: res.header.revision, deleted: true })
    this.from = BigInt(res.header.revision)
  }

  private async session (created: () => void): Promise<'stopped' | 'compacted'> {
    // Tied to the member having a leader, and a frozen or cut-off member is left (watch-stream.ts).
    const w = await storeCall('open config watch stream', async () => await openWatchStream(this.o.client))
    if (this.stopped) { try { w.stream.cancel() } catch {}; return 'stopped' }
    try {
      return await runWatchSession(this.o.client, w, {
        op: 'watch config',
        probe: DEFAULT_SILENCE_PROBE,
        watchIds: [CONFIG_WATCH],
        requests: [{ create_request: { key: Buffer.from(configKey(this.o.prefix)), start_revision: (this.from + 1n).toString(), watch_id: CONFIG_WATCH } }],
        onOpen: stop => { this.endSession = stop },
        onCreated: created,
        onResponse: res => {
          for (const ev of res.events ?? []) {
            // A delete event's mod_revision is the revision of the delete.
            if (ev.type === 'Put') this.report({ revision: ev.kv.mod_revision, deleted: false }, ev.kv.value.toString())
            else this.report({ revision: ev.kv.mod_revision, deleted: true })
          }
          const rev = BigInt(res.header.revision)
          if (rev > this.from) this.from = rev
        }
      })
    } finally {
      this.endSession = undefined
    }
  }

  private report (change: ConfigChange, value?: string): void {
    const rev = BigInt(change.revision)
    if (rev <= this.seen) return
    this.seen = rev
    this.deleted = change.deleted
    if (value !== undefined) {
      try { change.config = parseNetworkConfigJson(value) } catch (e) { change.error = e as Error }
    }
    this.emit('changed', change)
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.endSession?.()
    this.wake?.()
    await this.running
  }
}

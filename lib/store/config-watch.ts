// Watches <prefix>config after start. podmeshd reads the config once and never applies a change
// live (docs/decisions.md, "Config changes"): this only tells it that etcd now holds another
// config, so it can say so (log, metric, status) instead of silently running the old one.
// Library code: emits events, logs nothing.
import { EventEmitter } from 'node:events'
import type { Watcher } from 'etcd3'
import type { NetworkConfig } from '../config/network'
import { parseNetworkConfigJson } from '../config/network-parse'
import type { StoreClient } from './client'
import { configKey } from './keys'

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
  /** The watch itself failed (etcd3 reconnects on its own). */
  error: [Error]
}

export class ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  private watcher: Watcher | undefined

  /** `revision`: the config revision the caller runs; changes after it are reported. */
  constructor (private readonly o: { client: StoreClient, prefix: string, revision: string }) { super() }

  async start (): Promise<void> {
    const w = await this.o.client.watch().key(configKey(this.o.prefix)).startRevision((BigInt(this.o.revision) + 1n).toString()).create()
    this.watcher = w
    w.on('put', kv => {
      const change: ConfigChange = { revision: kv.mod_revision, deleted: false }
      try { change.config = parseNetworkConfigJson(kv.value.toString()) } catch (e) { change.error = e as Error }
      this.emit('changed', change)
    })
    // A delete event's mod_revision is the revision of the delete.
    w.on('delete', kv => this.emit('changed', { revision: kv.mod_revision, deleted: true }))
    w.on('error', e => this.emit('error', e))
  }

  async stop (): Promise<void> {
    await this.watcher?.cancel()
    this.watcher = undefined
  }
}

// The daemon's view of the store: one etcd client, the network config read once at start, the
// node's lease and the watch, all bound to the same client and prefix.

import type { DaemonOptions } from '../config/daemon-options'
import type { NetworkConfig } from '../config/network'
import { connectStore, isStoreError, StoreError, type StoreClient } from '../store/client'
import { readConfigRevision } from '../store/config-store'
import { ConfigWatcher } from '../store/config-watch'
import { acquireNode, type NodeLease, type RecordFields } from '../store/node-lease'
import { NodeWatcher } from '../store/node-watch'

export type { NodeLease, NodeWatcher }

const WATCH_BACKOFF = { initialMs: 100, maxMs: 1000 }

export interface Store {
  readonly client: StoreClient
  readonly prefix: string
  readonly config: NetworkConfig
  /** Mod revision of the config key read at start: the config this daemon runs. */
  readonly configRevision: string
  /** Reports configs written to etcd after the one this daemon runs. */
  watchConfig: () => ConfigWatcher
  acquire: (o: { name: string, stateDir: string, ttlSeconds: number, requested?: string[], record: RecordFields }) => Promise<NodeLease>
  watch: () => NodeWatcher
  close: () => Promise<void>
}

/** Connects and reads the config. Errors that a retry may cure carry `retryable: true`. */
export async function openStore (o: DaemonOptions): Promise<Store> {
  const client = await connectStore({
    endpoints: o.etcdEndpoints,
    cluster: o.cluster,
    prefix: o.prefix,
    ...(o.etcdCa !== undefined ? { caFile: o.etcdCa } : {}),
    ...(o.etcdCert !== undefined ? { certFile: o.etcdCert } : {}),
    ...(o.etcdKey !== undefined ? { keyFile: o.etcdKey } : {}),
    ...(o.etcdUsername !== undefined ? { username: o.etcdUsername } : {}),
    ...(o.etcdPassword !== undefined ? { password: o.etcdPassword } : {})
  })
  let config: NetworkConfig
  let configRevision: string
  try {
    ({ config, revision: configRevision } = await readConfigRevision(client, o.prefix))
  } catch (e) {
    client.close()
    throw markRetryable(authFailure(e, o.etcdUsername))
  }
  return {
    client,
    prefix: o.prefix,
    config,
    configRevision,
    watchConfig: () => new ConfigWatcher({ client, prefix: o.prefix, revision: configRevision }),
    acquire: async a => {
      try {
        return await acquireNode({ client, prefix: o.prefix, config, ...a })
      } catch (e) {
        throw markRetryable(e)
      }
    },
    // Re-dialling a dead etcd once a second is cheap; a node must notice etcd's return quickly.
    // A short coalescing window: bursts still share a pass, because passes are single-flight
    // and everything arriving during one is picked up by the next.
    watch: () => new NodeWatcher({ client, prefix: o.prefix, config, backoff: WATCH_BACKOFF, coalesceMs: 2 }),
    close: async () => { client.close() }
  }
}

/** An unreachable etcd is worth waiting for; a missing config or a taken subnet is not. */
function markRetryable (e: unknown): unknown {
  if (isStoreError(e) && e.kind === 'unavailable') Object.defineProperty(e, 'retryable', { value: true })
  return e
}

/**
 * etcd says only "authentication failed, invalid user ID or password" or "user name is empty":
 * the operator needs to know which user this node tried and where it comes from. Never the
 * password. A wrong password is not retried: the daemon exits 1 and systemd restarts it.
 */
export function authFailure (e: unknown, username: string | undefined): unknown {
  if (!isStoreError(e)) return e
  if (e.kind === 'auth' && username !== undefined) {
    return new StoreError('auth', e.op, `authentication as etcd user "${username}" failed: wrong user name or password ` +
      '(--etcd-username/--etcd-password, PODMESH_ETCD_USERNAME/PODMESH_ETCD_PASSWORD; `podmeshctl node credentials <name>` makes or resets a node\'s user)', { cause: e })
  }
  if (username === undefined && /user name is empty/.test(e.message)) {
    return new StoreError('auth', e.op, 'etcd has authentication on and no etcd user was given: set --etcd-username and --etcd-password ' +
      '(PODMESH_ETCD_USERNAME/PODMESH_ETCD_PASSWORD)', { cause: e })
  }
  return e
}

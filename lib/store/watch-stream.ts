// Opening a watch stream that knows which etcd member serves it and that etcd closes when that
// member loses its leader. etcd3's watchClient.watch() offers neither: the member is what the
// watcher must avoid when the stream falls silent (member-health.ts), and a member cut off from
// its peers keeps serving a watch from its stale state until the stream is tied to having a
// leader — etcd's "require leader" metadata (hasleader=true), which clientv3 sets through
// WithRequireLeader: the member then ends the stream with "no leader" a few election timeouts
// after it lost the leader. This reaches etcd3's connection pool (as dropConnections does) and
// falls back to the plain watch if that shape changed.
import type { IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3'
import * as etcd3 from 'etcd3'
import type { StoreClient } from './client'

export interface WatchStream {
  stream: IDuplexStream<IWatchRequest, IWatchResponse>
  /** The pool's name of the member serving it; undefined on the fallback path. */
  member: string | undefined
  /** False on the fallback path (a partitioned member is then noticed by silence alone). */
  requiresLeader: boolean
}

interface GrpcMetadata { clone: () => GrpcMetadata, set: (k: string, v: string) => void }
interface PoolConnection {
  resource: { host: string }
  client: { watch: (md: GrpcMetadata, opts: object) => IDuplexStream<IWatchRequest, IWatchResponse> }
  metadata: GrpcMetadata
}
interface Pool { withConnection: <T>(service: string, fn: (c: PoolConnection) => T | Promise<T>) => Promise<T> }

const poolOf = (client: StoreClient): Pool | undefined => {
  const pool = (client as unknown as { pool?: Partial<Pool> }).pool
  return typeof pool?.withConnection === 'function' ? pool as Pool : undefined
}

export async function openWatchStream (client: StoreClient): Promise<WatchStream> {
  const pool = poolOf(client)
  if (pool === undefined) return { stream: await client.watchClient.watch(), member: undefined, requiresLeader: false }
  return await pool.withConnection('Watch', c => {
    const md = c.metadata.clone()
    md.set('hasleader', 'true')
    const stream = c.client.watch(md, {})
    if (typeof stream?.on !== 'function') throw new Error('etcd3 watch stream has an unexpected shape')
    // Cancelling a stream makes it emit an error (CANCELLED); a stream cancelled before or after
    // its consumer listens must not become an uncaught exception. The consumer's own listener
    // still sees every error.
    stream.on('error', () => {})
    return { stream, member: c.resource.host, requiresLeader: true }
  })
}

/** grpc's raw stream error as the typed etcd3 error (the pool's calls do this; a raw stream does not). */
export const typedStreamError = (e: unknown): unknown => (e instanceof Error ? etcd3.castGrpcError(e) : e)

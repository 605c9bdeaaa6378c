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
import { type StoreClient, StoreError, memberHealth } from './client'
import { isMemberSilence } from './member-health'

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

/** When a watch stream counts as silent: no message for idleMs, then no answer to a progress request for timeoutMs. */
export interface SilenceProbe { idleMs: number, timeoutMs: number }
export const DEFAULT_SILENCE_PROBE: SilenceProbe = { idleMs: 5000, timeoutMs: 3000 }

/**
 * Guards one watch stream against a member that is frozen or cut off (it keeps the TCP
 * connection and says nothing): after `idleMs` without a message it asks for progress, which a
 * live member answers at once; no answer within `timeoutMs` sets the member aside
 * (member-health.ts) and calls `onSilent`, whose caller ends the session and resumes elsewhere.
 * The caller reports every message with `heard()` and calls `stop()` when the session ends.
 */
export function guardSilence (client: StoreClient, w: WatchStream, probe: SilenceProbe, onSilent: (why: string) => void): { heard: () => void, stop: () => void } {
  let heardAt = Date.now()
  let probedAt: number | undefined
  const timer = setInterval(() => {
    const now = Date.now()
    if (probedAt !== undefined && now - probedAt >= probe.timeoutMs) {
      clearInterval(timer)
      const why = `${w.member === undefined ? 'etcd' : `etcd member ${w.member}`} did not answer a watch progress request within ${probe.timeoutMs} ms`
      if (w.member !== undefined) memberHealth(client)?.suspect(w.member, why)
      onSilent(why)
      return
    }
    if (probedAt === undefined && now - heardAt >= probe.idleMs) {
      probedAt = now
      try { w.stream.write({ progress_request: {} }) } catch {}
    }
  }, Math.max(50, Math.min(probe.idleMs, probe.timeoutMs) / 4))
  return {
    heard: () => { heardAt = Date.now(); probedAt = undefined },
    stop: () => clearInterval(timer)
  }
}

/** A watch stream failed or was cancelled for `reason`: if that says the member cannot serve, set it aside. */
export function noteStreamFailure (client: StoreClient, w: WatchStream, reason: unknown): void {
  if (w.member !== undefined && isMemberSilence(reason)) memberHealth(client)?.suspect(w.member, reason instanceof Error ? reason.message : String(reason))
}

/** grpc's raw stream error as the typed etcd3 error (the pool's calls do this; a raw stream does not). */
export const typedStreamError = (e: unknown): unknown => (e instanceof Error ? etcd3.castGrpcError(e) : e)

export interface WatchSessionOptions {
  /** What the session is, for errors ("watch", "watch config"). */
  op: string
  probe: SilenceProbe
  /** The IDs our create requests chose: any other response (a progress answer, ID -1) only proves the member alive. */
  watchIds: readonly string[]
  /** The create requests, sent once every handler is in place. */
  requests: readonly IWatchRequest[]
  /** Receives the function that ends the session ('stopped'), for the owner's stop(). */
  onOpen: (stop: () => void) => void
  onCreated?: () => void
  /** Every response of our watches (events or a progress notice). */
  onResponse: (res: IWatchResponse) => void
}

/**
 * One session on an opened watch stream, the part both watchers share: it ends 'compacted' when
 * etcd compacted past the start, 'stopped' when the owner stops it, and fails (the owner
 * reconnects) when etcd cancels the watch, the stream errs or ends, or the member falls silent
 * (guardSilence) — a member that failed this way is set aside. The stream is cancelled at the end.
 */
export async function runWatchSession (client: StoreClient, w: WatchStream, o: WatchSessionOptions): Promise<'compacted' | 'stopped'> {
  const where = w.member === undefined ? 'etcd' : `etcd member ${w.member}`
  const { stream } = w
  return await new Promise((resolve, reject) => {
    let open = true
    const finish = (settle: () => void): void => {
      if (!open) return
      open = false
      silence.stop()
      try { stream.cancel() } catch {}
      settle()
    }
    const silence = guardSilence(client, w, o.probe, why => finish(() => reject(new StoreError('unavailable', o.op, why))))
    o.onOpen(() => finish(() => resolve('stopped')))
    stream.on('data', (res: IWatchResponse) => {
      if (!open) return
      silence.heard()
      if (BigInt(res.compact_revision) > 0n) { finish(() => resolve('compacted')); return }
      if (res.canceled) {
        const reason = res.cancel_reason || 'no reason given'
        noteStreamFailure(client, w, new Error(reason))
        finish(() => reject(new StoreError('other', o.op, `${where} cancelled the watch: ${reason}`)))
        return
      }
      if (res.created) { o.onCreated?.(); return }
      // etcd 3.4 answers a progress request without waiting for the watches to catch up: such an
      // answer is no resume point.
      if (!o.watchIds.includes(res.watch_id)) return
      o.onResponse(res)
    })
    stream.on('error', (err: unknown) => {
      const typed = typedStreamError(err)
      if (open) noteStreamFailure(client, w, typed)
      finish(() => reject(typed))
    })
    stream.on('end', () => finish(() => reject(new StoreError('unavailable', o.op, `${where} ended the watch stream`))))
    for (const r of o.requests) stream.write(r)
  })
}

// Watching every key under one prefix for a reader that re-reads what it shows on any change
// (podmeshctl status -w): one watch from a given revision on a leader-bound stream guarded
// against silent members (watch-stream.ts). It reports that something changed, with etcd's
// revision, not what: the reader's own consistent read is the truth (level-triggered). It ends
// 'stopped' when the signal aborts, 'compacted' when etcd compacted past the start (the reader
// re-reads and watches on), and fails with a StoreError when etcd goes away — no reconnecting:
// an operator's watch says so and exits, where the daemon's watchers ride it out.
import type { StoreClient } from './client'
import { storeCall, storeError } from './client'
import { prefixEnd } from './keys'
import { DEFAULT_SILENCE_PROBE, type SilenceProbe, openWatchStream, runWatchSession } from './watch-stream'

/** The watch's ID on its stream (client-chosen; a progress answer carries another). */
const PREFIX_WATCH = '1'

export interface PrefixWatchOptions {
  prefix: string
  /** The first revision to report (the revision of the reader's read plus one). */
  fromRevision: bigint
  signal: AbortSignal
  /** Called for each batch of events, with the revision they bring etcd to. */
  onChange: (revision: bigint) => void
  probe?: SilenceProbe
}

export async function watchPrefix (client: StoreClient, o: PrefixWatchOptions): Promise<'stopped' | 'compacted'> {
  if (o.signal.aborted) return 'stopped'
  const op = `watch ${o.prefix}`
  const w = await storeCall(`open ${op}`, async () => await openWatchStream(client))
  let stop: (() => void) | undefined
  const onAbort = (): void => stop?.()
  o.signal.addEventListener('abort', onAbort)
  try {
    return await runWatchSession(client, w, {
      op,
      probe: o.probe ?? DEFAULT_SILENCE_PROBE,
      watchIds: [PREFIX_WATCH],
      requests: [{ create_request: { key: Buffer.from(o.prefix), range_end: prefixEnd(o.prefix), start_revision: o.fromRevision.toString(), watch_id: PREFIX_WATCH } }],
      onOpen: s => { stop = s; if (o.signal.aborted) s() },
      onResponse: res => { if ((res.events ?? []).length > 0) o.onChange(BigInt(res.header.revision)) }
    })
  } catch (e) {
    throw storeError(op, e)
  } finally {
    o.signal.removeEventListener('abort', onAbort)
  }
}

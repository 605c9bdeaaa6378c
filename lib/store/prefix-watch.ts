// Watching every key under one prefix for a reader that re-reads what it shows on any change
// (podmeshctl status -w): one watch from a given revision on a leader-bound stream guarded
// against silent members (watch-stream.ts). It reports each batch with etcd's revision and its
// events: a reader may re-read (level-triggered, as status -w does) or apply the events to what
// it read at the revision it watches from (the daemon's service inputs). It ends
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
  /** Called for each batch of events, with the revision they bring etcd to and the events themselves. */
  onChange: (revision: bigint, events: readonly PrefixEvent[]) => void
  probe?: SilenceProbe
}

/** One change under the prefix: a key put (with its value) or deleted. */
export type PrefixEvent = { type: 'put', key: string, value: string } | { type: 'delete', key: string }

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
      onResponse: res => {
        const events = res.events ?? []
        if (events.length === 0) return
        o.onChange(BigInt(res.header.revision), events.map((e): PrefixEvent => e.type === 'Delete'
          ? { type: 'delete', key: e.kv.key.toString() }
          : { type: 'put', key: e.kv.key.toString(), value: e.kv.value.toString() }))
      }
    })
  } catch (e) {
    throw storeError(op, e)
  } finally {
    o.signal.removeEventListener('abort', onAbort)
  }
}

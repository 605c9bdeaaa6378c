// `podmeshctl status -w`: the status as `status` shows it, shown again whenever anything under the
// cluster's prefix changes (a node joins, leaves, or writes its status), like `kubectl get -w`.
// Level-triggered: every change is only a cue to read the whole cluster again at one revision;
// changes that arrive while a read runs become one more read. A redraw whose text is the same
// as the last one is not shown. On a terminal the screen is cleared and the table redrawn in
// place; otherwise (a pipe, a file) each new table is appended after a "# etcd revision" line,
// and -o json writes one JSON object per line. Ends on the signal (the caller's SIGINT/SIGTERM)
// and fails with the StoreError when etcd goes away: no reconnect, the operator is told.
import type { StoreClient } from '../store/client'
import { watchPrefix } from '../store/prefix-watch'
import { readCluster } from './cluster-read'
import { NodeNotFoundError } from './node-not-found'
import type { OutputFormat } from './output'
import { hasNode, renderStatus, statusRows } from './status'

export interface StatusWatchOptions {
  client: StoreClient
  prefix: string
  format: OutputFormat
  only?: string
  /** Aborting it ends the watch (resolves). */
  signal: AbortSignal
  write: (text: string) => void
  /** Redraw in place (clear the screen) rather than append. */
  tty: boolean
  /** Changes within this window become one read. Default 100 ms. */
  coalesceMs?: number
}

/** ANSI: cursor home, clear screen. */
const CLEAR = '\x1b[H\x1b[2J'

/** What is shown for one read: the body (compared between reads) and the frame around it. */
function frame (o: StatusWatchOptions, revision: string, at: Date, body: string): string {
  if (o.format === 'json') return `{"revision":${JSON.stringify(revision)},"time":${JSON.stringify(at.toISOString())},"rows":${body}}\n`
  const head = `# etcd revision ${revision} at ${at.toISOString()}${o.only !== undefined ? `, node ${o.only}` : ''}\n`
  return o.tty ? `${CLEAR}${head}${body}` : `${head}${body}\n`
}

export async function watchStatus (o: StatusWatchOptions): Promise<void> {
  const coalesceMs = o.coalesceMs ?? 100
  let last: string | undefined
  let first = true

  /** Reads the cluster, shows it if it differs from the last; returns the revision read. */
  const draw = async (): Promise<bigint> => {
    const c = await readCluster(o.client, o.prefix)
    // Asked for one node: it must exist at the start; if it goes later, the empty status says so.
    if (first && o.only !== undefined && !hasNode(c, o.only)) throw new NodeNotFoundError(o.only, o.prefix)
    first = false
    const now = Date.now()
    const body = o.format === 'json' ? JSON.stringify(statusRows(c, now, o.only)) : renderStatus(c, 'table', now, o.only)
    if (body !== last) {
      last = body
      o.write(frame(o, c.revision, new Date(now), body))
    }
    return BigInt(c.revision)
  }

  let from = await draw()
  let failure: unknown
  const failed = new AbortController()
  const stop = AbortSignal.any([o.signal, failed.signal])
  let drawing: Promise<void> = Promise.resolve()
  let queued = false
  const onChange = (): void => {
    if (queued) return
    queued = true
    drawing = drawing
      .then(async () => {
        await new Promise(resolve => setTimeout(resolve, coalesceMs))
        queued = false
        if (!stop.aborted) from = await draw()
      })
      .catch((e: unknown) => { failure ??= e; failed.abort() })
  }
  while (!stop.aborted) {
    const outcome = await watchPrefix(o.client, { prefix: o.prefix, fromRevision: from + 1n, signal: stop, onChange })
    if (outcome === 'stopped') break
    // etcd compacted past our start: read afresh and watch on from there.
    await drawing
    if (!stop.aborted) from = await draw()
  }
  await drawing
  if (failure !== undefined) throw failure
}

// Test fixture, run inside a test's network namespace as a long-lived agent (see
// test/harness/netns.ts serveRequests): holds an UnderlayWatch on the namespace's links and
// addresses and records what it emits, and runs findUnderlay against the namespace's kernel.

import { Rtnl } from '../../lib/dataplane/rtnl'
import { findUnderlay } from '../../lib/dataplane/underlay'
import { UnderlayWatch, type UnderlayChangeCause, type UnderlayWatchOptions } from '../../lib/dataplane/underlay-watch'
import { serveRequests } from '../harness/netns'

const rtnl = Rtnl.open()
let watch: UnderlayWatch | undefined
let changes: UnderlayChangeCause[] = []

serveRequests({
  open: async (o: UnderlayWatchOptions) => {
    watch = UnderlayWatch.open(o)
    watch.on('changed', cause => changes.push(cause))
  },
  /** The causes emitted since the last call. */
  changes: async () => { const c = changes; changes = []; return c },
  close: async () => { watch?.close() },
  find: async (a: { interface: string, keep?: string }) =>
    await findUnderlay(rtnl, { interface: a.interface }, a.keep !== undefined ? { keep: a.keep } : {})
}).finally(() => { watch?.close(); rtnl.close() }).catch(e => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})

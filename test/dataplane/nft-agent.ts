// Test fixture, run inside a test's "node" network namespace as a long-lived agent (see
// test/harness/netns.ts serveRequests): applies, lists and removes podmesh's service table there
// the way the daemon does, and says how many processes each call spawned.

import { spawnCount } from '../../lib/dataplane/exec'
import { applyServiceRules, listServiceTable, removeServiceTable } from '../../lib/dataplane/nft/apply'
import type { ServiceRuleset } from '../../lib/service/rules'
import { serveRequests } from '../harness/netns'

const counted = async <T>(fn: () => Promise<T>): Promise<{ result: T, spawns: number }> => {
  const before = spawnCount()
  const result = await fn()
  return { result, spawns: spawnCount() - before }
}

serveRequests({
  apply: async (a: { next: ServiceRuleset, previous?: ServiceRuleset }) => await counted(async () => await applyServiceRules(a.next, a.previous ?? undefined)),
  remove: async () => await counted(async () => { await removeServiceTable(); return null }),
  list: async () => await listServiceTable() ?? null
}).catch(e => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})

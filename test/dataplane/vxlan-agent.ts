// Test fixture, run inside a test's network namespace as a long-lived agent (see
// test/harness/netns.ts serveRequests): plans and applies a VXLAN device of its namespace the way
// the daemon does (observe, plan against it, apply) and reports what the kernel holds afterwards.

import type { VxlanDevice } from '../../lib/mesh/types'
import { planVxlan } from '../../lib/mesh/plan'
import { Rtnl } from '../../lib/dataplane/rtnl'
import { applyVxlan, observeVxlan } from '../../lib/dataplane/vxlan/device'
import { serveRequests } from '../harness/netns'

const rtnl = Rtnl.open()

serveRequests({
  observe: async (a: { ifname: string }) => await observeVxlan(rtnl, a.ifname) ?? null,
  /** One pass: observe, plan (with pruning as the caller says), apply; returns the plan. */
  sync: async (a: { desired: VxlanDevice, prune: boolean }) => {
    const p = planVxlan(a.desired, await observeVxlan(rtnl, a.desired.ifname))
    if (!a.prune) { p.delFdb = []; p.delNeighbors = [] }
    await applyVxlan(rtnl, p)
    return p
  }
}).finally(() => rtnl.close()).catch(e => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})

// Test fixture, run inside a test's network namespace as a long-lived agent (see
// test/harness/netns.ts serveRequests): drives the WireGuard device, routes and sysctls of its
// namespace on request, and reports how many processes each request spawned, so tests can hold
// the data plane to "one `wg` per apply" and "one process per idle resync".

import type { Route, WireguardDevice, WireguardPlan } from '../../lib/mesh/types'
import { planWireguard } from '../../lib/mesh/plan'
import { spawnCount } from '../../lib/dataplane/exec'
import { Rtnl } from '../../lib/dataplane/rtnl'
import { applyRoutes, observeRoutes } from '../../lib/dataplane/routes'
import { ensureForwarding } from '../../lib/dataplane/sysctl'
import { applyWireguard, deleteDevice, ensureDevice, observeWireguard, type WireguardMode } from '../../lib/dataplane/wireguard/device'
import { serveRequests } from '../harness/netns'

const rtnl = Rtnl.open()

/** Runs `fn` and reports its result with the number of processes it spawned. */
async function counted<T> (fn: () => Promise<T>): Promise<{ value: T, spawns: number }> {
  const before = spawnCount()
  const value = await fn()
  return { value, spawns: spawnCount() - before }
}

async function ifnameByIndex (): Promise<Map<number, string>> {
  return new Map((await rtnl.links()).map(l => [l.index, l.name]))
}

serveRequests({
  link: async (a: { ifname: string }) => await rtnl.link(a.ifname) ?? null,
  ensure: async (a: { ifname: string, mode: WireguardMode }) => await counted(async () => await ensureDevice(a.ifname, { mode: a.mode, rtnl })),
  apply: async (a: { plan: WireguardPlan, privateKeyFile: string, mode?: WireguardMode }) =>
    await counted(async () => await applyWireguard(a.plan, { rtnl, privateKeyFile: a.privateKeyFile, ...(a.mode !== undefined ? { mode: a.mode } : {}) })),
  observe: async (a: { ifname: string }) => await counted(async () => await observeWireguard(a.ifname, rtnl) ?? null),
  /** One resync of the WireGuard device as the daemon does it: observe, plan, apply. */
  resync: async (a: { desired: WireguardDevice, privateKeyFile: string }) => await counted(async () => {
    const observed = await observeWireguard(a.desired.ifname, rtnl)
    const plan = planWireguard(a.desired, observed)
    const result = await applyWireguard(plan, { rtnl, privateKeyFile: a.privateKeyFile })
    return { plan, result }
  }),
  deleteDevice: async (a: { ifname: string }) => await counted(async () => { await deleteDevice(a.ifname, rtnl) }),
  observeRoutes: async () => await observeRoutes(rtnl, await ifnameByIndex()),
  applyRoutes: async (a: { add: Route[], del: Route[] }) => await counted(async () => { await applyRoutes(rtnl, a.add, a.del) }),
  forwarding: async (a: { ipv4: boolean, ipv6: boolean }) => await ensureForwarding(a)
}).finally(() => rtnl.close()).catch(e => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})

// Scale benchmark (issue #6, item 2): one real node — a real wireguard-go device in a network
// namespace, real netlink, a real etcd — against N synthetic node records. Measures the daemon's
// own loop for a cold start (NodeWatcher list → desiredState → Kernel.observe → plan →
// Kernel.apply), a resync with nothing to do (a full observe, as the daemon's periodic resync
// does), and one node joining and one leaving — driven as in the daemon: the watch event triggers
// the Reconciler, whose pass plans against the expected state (lib/mesh/expected.ts afterApply)
// instead of re-reading the kernel — with the processes each one spawned. Floor, timed in the same run on a fresh device: `wg setconf` of the same N peers
// plus `ip -batch` of the same N routes.
//
//   npm run -s bench:scale [-- --sizes 1000,5000,10000] [--json]
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { EtcdProcess } from '../test/harness/etcd'
import { connectStore, type StoreClient } from '../lib/store/client'
import { writeConfig } from '../lib/store/config-store'
import { NodeWatcher } from '../lib/store/node-watch'
import { desiredState, type LocalIdentity } from '../lib/mesh/desired'
import { plan } from '../lib/mesh/plan'
import { planIsEmpty, type ObservedState } from '../lib/mesh/types'
import { afterApply } from '../lib/mesh/expected'
import { Reconciler } from '../lib/daemon/reconciler'
import { Kernel } from '../lib/dataplane/kernel'
import { Rtnl } from '../lib/dataplane/rtnl'
import { spawnCount, run } from '../lib/dataplane/exec'
import { ensureDevice } from '../lib/dataplane/wireguard/device'
import { loadOrCreatePrivateKey } from '../lib/dataplane/keys'
import { ROUTE_PROTOCOL } from '../lib/dataplane/route-protocol'
import type { NodeRecord } from '../lib/store/node-record'
import { SCALE_CONFIG, syntheticNode, putNodes, putNode, deleteNode } from './synthetic'
import { printReport, percentile, ms, now, type Row } from './report'
import { runInNetns } from './netns-run'
import { sized } from './smoke'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const sizes = arg('--sizes', sized('1000,5000', '100')).split(',').map(Number).filter(n => n > 0)
const TAG = process.env.BENCH_TAG ?? 'bx'
const SELF_SUBNET = '10.0.0.0/24' // syntheticNode(i) starts at 10.0.1.0/24

interface Ctx { client: StoreClient, rtnl: Rtnl, key: { privateKeyFile: string, publicKey: string }, dir: string }

/** The floor: a fresh device configured with one `wg setconf` and routed with one `ip -batch`. */
async function floor (c: Ctx, ifname: string, nodes: readonly NodeRecord[]): Promise<{ wg: number, ip: number }> {
  await ensureDevice(ifname, { mode: 'userspace', rtnl: c.rtnl })
  execFileSync('ip', ['link', 'set', ifname, 'up'])
  execFileSync('ip', ['addr', 'add', '10.0.0.0/32', 'dev', ifname])
  const priv = (await readFile(c.key.privateKeyFile, 'utf8')).trim()
  const conf = [`[Interface]\nPrivateKey = ${priv}\nListenPort = 0\n`,
    ...nodes.map(n => `[Peer]\nPublicKey = ${n.publicKey ?? ''}\nEndpoint = ${n.endpoint}\nAllowedIPs = ${n.podCIDRs.join(',')}\n`)].join('\n')
  const confFile = join(c.dir, `${ifname}.conf`)
  await writeFile(confFile, conf, { mode: 0o600 })
  const batchFile = join(c.dir, `${ifname}.batch`)
  await writeFile(batchFile, nodes.flatMap(n => n.podCIDRs.map(d => `route add ${d} dev ${ifname} proto ${ROUTE_PROTOCOL} src 10.0.0.0\n`)).join(''))
  let t = now()
  await run('wg', ['setconf', ifname, confFile], { timeoutMs: 300_000 })
  const wg = ms(t)
  t = now()
  await run('ip', ['-batch', batchFile], { timeoutMs: 300_000 })
  const ip = ms(t)
  execFileSync('ip', ['link', 'del', ifname]) // wireguard-go ends with its device
  return { wg, ip }
}

/**
 * The daemon's reconcile pass (lib/daemon/daemon.ts reconcile()) without its logging, metrics and
 * pod-network repair: a watch-triggered pass plans against the state the last pass left in the
 * kernel; any other pass (resync) reads the kernel.
 */
class DaemonPass {
  expected: ObservedState | undefined
  /** The last pass's phases (ms), to show where a join's time goes. */
  phases = { desired: 0, observe: 0, plan: 0, apply: 0, expected: 0 }
  constructor (private readonly kernel: Kernel, private readonly watcher: NodeWatcher, private readonly self: LocalIdentity) {}

  async run (reason: string): Promise<{ changes: number, observed: boolean }> {
    let t = now()
    const d = desiredState(SCALE_CONFIG, this.watcher.current().values(), this.self)
    this.phases.desired = ms(t); t = now()
    const full = reason !== 'watch' || this.expected === undefined
    const observed = full ? await this.kernel.observe() : this.expected as ObservedState
    this.phases.observe = ms(t); t = now()
    const p = plan(d.state, observed, { prune: true })
    this.phases.plan = ms(t); t = now()
    this.expected = undefined
    if (!planIsEmpty(p)) await this.kernel.apply(p)
    this.phases.apply = ms(t); t = now()
    this.expected = afterApply(observed, p, d.state)
    this.phases.expected = ms(t)
    const changes = p.addRoutes.length + p.delRoutes.length + (p.wireguard?.upsertPeers.length ?? 0) + (p.wireguard?.removePeers.length ?? 0)
    return { changes, observed: full }
  }
}

/** A pass called directly, timed with the processes it spawned. */
async function timedPass (pass: DaemonPass, reason: string): Promise<{ ms: number, spawns: number, changes: number }> {
  const s0 = spawnCount(); const t = now()
  const r = await pass.run(reason)
  return { ms: ms(t), spawns: spawnCount() - s0, changes: r.changes }
}

async function peerCount (ifname: string): Promise<number> {
  const { stdout } = await run('wg', ['show', ifname, 'peers'])
  return stdout.split('\n').filter(l => l !== '').length
}
const routeCount = (ifname: string): number =>
  execFileSync('ip', ['route', 'show', 'dev', ifname, 'proto', String(ROUTE_PROTOCOL)], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter(l => l !== '').length

async function measure (c: Ctx, n: number, idx: number): Promise<Row[]> {
  const prefix = `/bench/scale${n}/`
  await writeConfig(c.client, prefix, SCALE_CONFIG)
  const nodes = Array.from({ length: n }, (_, i) => syntheticNode(i + 1))
  await putNodes(c.client, prefix, nodes)

  const f = await floor(c, `${TAG}f${idx}`, nodes)
  const floorMs = f.wg + f.ip

  const wgIf = `${TAG}w${idx}`
  const self: LocalIdentity = {
    name: 'self', podCIDRs: [SELF_SUBNET], underlayIp: '192.0.2.2', publicKey: c.key.publicKey, underlayMtu: 1500,
    devices: { wireguard: wgIf, vxlan: `${TAG}x${idx}` }
  }
  const kernel = new Kernel({ rtnl: c.rtnl, devices: self.devices, privateKeyFile: c.key.privateKeyFile, wgMode: 'userspace' })
  // Like the floor, podmesh starts on an existing (empty) device: device creation is not measured.
  await ensureDevice(wgIf, { mode: 'userspace', rtnl: c.rtnl })

  // Cold start: list, desired, observe, plan, apply.
  const s0 = spawnCount()
  const t0 = now()
  const watcher = new NodeWatcher({ client: c.client, prefix, config: SCALE_CONFIG, coalesceMs: 2 })
  await watcher.start()
  const tList = ms(t0)
  let t = now()
  const d = desiredState(SCALE_CONFIG, watcher.current().values(), self)
  const tDesired = ms(t); t = now()
  const observed = await kernel.observe()
  const tObserve = ms(t); t = now()
  const p = plan(d.state, observed, { prune: true })
  const tPlan = ms(t); t = now()
  await kernel.apply(p)
  const tApply = ms(t)
  const cold = ms(t0)
  const coldSpawns = spawnCount() - s0
  const peersApplied = await peerCount(wgIf)
  const routesApplied = routeCount(wgIf)
  const pass = new DaemonPass(kernel, watcher, self)
  pass.expected = afterApply(observed, p, d.state)
  // The daemon's driver: watch events trigger it, coalesced (1 ms, as podmeshd sets it), one pass at a time.
  const reconciler = new Reconciler({ run: async reason => ({ changes: Array.from({ length: (await pass.run(reason)).changes }, () => '') }), resyncIntervalMs: 3_600_000, coalesceMs: 1 })
  const onChange = (): void => reconciler.trigger('watch')

  try {
    // Resync with nothing to change (full observe, as the periodic resync does): 5 passes, median.
    const resyncs = []
    for (let i = 0; i < 5; i++) resyncs.push(await timedPass(pass, 'resync'))
    const resync = resyncs.sort((a, b) => a.ms - b.ms)[2] ?? { ms: NaN, spawns: NaN, changes: NaN }

    // One join and one leave, from the etcd write to the Reconciler's pass applied (watch delivery
    // and both coalescing windows included), as in the daemon.
    watcher.on('change', onChange)
    const joins: Array<{ total: number, watch: number, spawns: number, changes: number, phases: string }> = []
    const leaves: typeof joins = []
    for (let k = 0; k < 5; k++) {
      const extra = syntheticNode(n + 1 + k)
      for (const [op, out] of [[putNode, joins], [deleteNode, leaves]] as const) {
        const changed = once(watcher, 'change')
        const applied = once(reconciler, 'applied')
        const s1 = spawnCount()
        const t1 = now()
        await op(c.client, prefix, extra)
        await changed
        const watch = ms(t1)
        const [e] = await applied as [{ changes: string[] }]
        const ph = pass.phases
        out.push({ total: ms(t1), watch, spawns: spawnCount() - s1, changes: e.changes.length, phases: `desired ${ph.desired.toFixed(1)}, plan ${ph.plan.toFixed(1)}, apply ${ph.apply.toFixed(1)}, afterApply ${ph.expected.toFixed(1)} ms` })
      }
    }
    watcher.off('change', onChange)
    // The expected state must still be the kernel's: a full resync finds nothing to do.
    const check = await timedPass(pass, 'resync')
    const peersAfter = await peerCount(wgIf)
    const routesAfter = routeCount(wgIf)
    const med = (xs: typeof joins, k: 'total' | 'watch' | 'spawns' | 'changes'): number => percentile(xs.map(x => x[k]), 50)
    const medPhases = (xs: typeof joins): string => [...xs].sort((a, b) => a.total - b.total)[Math.floor((xs.length - 1) / 2)]?.phases ?? ''
    const max = (xs: typeof joins, k: 'total' | 'spawns'): number => Math.max(...xs.map(x => x[k]))
    const big = n >= 5000
    return [
      { metric: `N=${n} floor: wg setconf`, value: f.wg, unit: 'ms' },
      { metric: `N=${n} floor: ip -batch routes`, value: f.ip, unit: 'ms' },
      { metric: `N=${n} floor: total`, value: floorMs, unit: 'ms' },
      { metric: `N=${n} cold start (list→applied)`, value: cold, unit: 'ms', floor: floorMs, target: 2 * floorMs, note: `${peersApplied} peers, ${routesApplied} routes in kernel` },
      { metric: `N=${n}   list (etcd, NodeWatcher)`, value: tList, unit: 'ms' },
      { metric: `N=${n}   desiredState`, value: tDesired, unit: 'ms' },
      { metric: `N=${n}   Kernel.observe`, value: tObserve, unit: 'ms' },
      { metric: `N=${n}   plan`, value: tPlan, unit: 'ms' },
      { metric: `N=${n}   Kernel.apply`, value: tApply, unit: 'ms', floor: floorMs },
      { metric: `N=${n} cold start processes`, value: coldSpawns, unit: 'procs' },
      { metric: `N=${n} resync, no change (median of 5)`, value: resync.ms, unit: 'ms', ...(big ? { target: 200 } : {}), note: `${resync.changes} changes` },
      { metric: `N=${n} resync processes`, value: resync.spawns, unit: 'procs', target: 1 },
      { metric: `N=${n} join: etcd put→applied (p50 of 5)`, value: med(joins, 'total'), unit: 'ms', ...(big ? { target: 50 } : {}), note: `watch delivery ${med(joins, 'watch').toFixed(1)} ms, max ${max(joins, 'total').toFixed(1)} ms` },
      { metric: `N=${n} join processes (max)`, value: max(joins, 'spawns'), unit: 'procs', target: 2, note: `watch pass, no kernel read; ${med(joins, 'changes')} changes; ${medPhases(joins)}` },
      { metric: `N=${n} leave: etcd delete→applied (p50 of 5)`, value: med(leaves, 'total'), unit: 'ms', ...(big ? { target: 50 } : {}), note: `watch delivery ${med(leaves, 'watch').toFixed(1)} ms, max ${max(leaves, 'total').toFixed(1)} ms` },
      { metric: `N=${n} leave processes (max)`, value: max(leaves, 'spawns'), unit: 'procs', target: 2, note: `${med(leaves, 'changes')} changes; ${medPhases(leaves)}` },
      { metric: `N=${n} resync after joins/leaves: changes`, value: check.changes, unit: 'changes', target: 0, note: `kernel ${peersAfter} peers, ${routesAfter} routes (want ${n})` }
    ]
  } finally {
    watcher.off('change', onChange)
    await reconciler.stop()
    await watcher.stop()
    try { execFileSync('ip', ['link', 'del', wgIf]) } catch {}
  }
}

async function inner (): Promise<void> {
  const etcd = await EtcdProcess.create()
  const dir = await mkdtemp(join(tmpdir(), 'podmesh-bench-scale-'))
  const rtnl = Rtnl.open()
  const client = await connectStore({ endpoints: etcd.endpoints } as Parameters<typeof connectStore>[0])
  try {
    const key = await loadOrCreatePrivateKey(join(dir, 'state'))
    const ctx: Ctx = { client, rtnl, key, dir }
    const rows: Row[] = []
    for (const [i, n] of sizes.entries()) {
      process.stderr.write(`scale: N=${n}…\n`)
      rows.push(...await measure(ctx, n, i))
    }
    printReport('scale', rows, { sizes: sizes.join(','), wireguard: 'wireguard-go (userspace)', cpus: (await import('node:os')).cpus().length })
  } finally {
    client.close()
    rtnl.close()
    await etcd.destroy()
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv.includes('--inner')) {
  inner().then(() => process.exit(0), e => { process.stderr.write(`scale: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })
} else {
  runInNetns(__filename, process.argv.slice(2)).then(code => process.exit(code), e => { process.stderr.write(`${String(e)}\n`); process.exit(1) })
}

// Footprint (issue #6, item 3; issue #13): the compiled podmeshd at idle, in a network namespace,
// against a real etcd holding 0, 1,000, 5,000 and 10,000 synthetic nodes (synthetic.ts): resident
// memory (VmRSS of the daemon; wireguard-go's shown beside it), and CPU over --idle seconds
// (default 60) at every size of 5,000 or more and at the largest, from /proc/<pid>/stat
// utime+stime, starting --settle seconds after ready (default 35: past the first resync, which
// fills the resync's caches, so the window shows the steady state). Floor: an idle `node -e`
// process's RSS. `--smoke`: 100 nodes, 2 s idle, settle 5 s.
//
//   npm run -s bench:footprint [-- --sizes 0,1000,5000,10000 --idle 60 --settle 35 --cpu-prof /tmp/prof
//                                  --node-flags "--trace-gc"] [--json]
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EtcdProcess } from '../test/harness/etcd'
import { connectStore } from '../lib/store/client'
import { writeConfig } from '../lib/store/config-store'
import { SCALE_CONFIG, syntheticNode, putNodes } from './synthetic'
import { printReport, type Row } from './report'
import { REPO, runInNetns, wireguardGoPids } from './netns-run'
import { sized } from './smoke'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const sizes = arg('--sizes', sized('0,1000,5000,10000', '100')).split(',').map(Number)
const IDLE_S = Number(arg('--idle', sized('60', '2')))
/** Seconds from ready to the CPU window: start-up (path probes, the first resync) is not idle. */
const SETTLE_S = Number(arg('--settle', sized('35', '5')))
/** Write a V8 CPU profile of each daemon to this dir (node --cpu-prof), to see where idle time goes. */
const PROF_DIR = arg('--cpu-prof', '')
/** V8/Node flags for each daemon, e.g. "--trace-gc" (its stdout is then shown), to see where idle time goes. */
const NODE_FLAGS = arg('--node-flags', '').split(' ').filter(f => f !== '')
/** Idle CPU is measured where the target applies (≥ 5,000 peers, issue #13) and at the largest size. */
const measuresCpu = (n: number): boolean => n >= 5000 || n === Math.max(...sizes)
const TAG = process.env.BENCH_TAG ?? 'bx'
const DAEMON = join(REPO, 'dist', 'cmd', 'podmeshd.js')
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

async function rssMiB (pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? NaN) / 1024
}
/** utime + stime in seconds (USER_HZ is 100 on Linux), and the CPU seconds of each thread name. */
async function cpuSeconds (pid: number): Promise<{ user: number, system: number, threads: Map<string, number> }> {
  const fields = (stat: string): string[] => stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const f = fields(await readFile(`/proc/${pid}/stat`, 'utf8'))
  const threads = new Map<string, number>()
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    try {
      const name = tid === String(pid) ? 'main' : (await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim()
      const t = fields(await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8'))
      threads.set(name, (threads.get(name) ?? 0) + (Number(t[11]) + Number(t[12])) / 100)
    } catch { /* the thread ended */ }
  }
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100, threads }
}

/** "main 0.40, V8 DefaultWorke 0.52, …": each thread name's share of a core between two reads. */
function threadSplit (a: Map<string, number>, b: Map<string, number>, seconds: number): string {
  return [...b].map(([name, s]) => [name, (s - (a.get(name) ?? 0)) / seconds * 100] as const)
    .filter(([, pct]) => pct >= 0.01).sort((x, y) => y[1] - x[1]).map(([name, pct]) => `${name} ${pct.toFixed(2)}`).join(', ')
}

async function waitReady (url: string, child: ChildProcess, timeoutMs: number): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    if (child.exitCode !== null) throw new Error(`podmeshd exited with ${child.exitCode}`)
    try { if ((await (await fetch(url)).text()).startsWith('ready')) return Date.now() - t0 } catch {}
    await sleep(100)
  }
  throw new Error(`podmeshd not ready after ${timeoutMs} ms`)
}

async function inner (): Promise<void> {
  const etcd = await EtcdProcess.create()
  const dir = await mkdtemp(join(tmpdir(), 'podmesh-bench-fp-'))
  const client = await connectStore({ endpoints: etcd.endpoints } as Parameters<typeof connectStore>[0])
  const rows: Row[] = []
  let daemon: ChildProcess | undefined
  try {
    const idle = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
    await sleep(500)
    const floorRss = await rssMiB(idle.pid as number)
    idle.kill('SIGKILL')
    rows.push({ metric: 'floor: idle node process RSS', value: floorRss, unit: 'MiB' })
    for (const [i, n] of sizes.entries()) {
      process.stderr.write(`footprint: N=${n}…\n`)
      const prefix = `/bench/fp${n}/`
      await writeConfig(client, prefix, SCALE_CONFIG)
      await putNodes(client, prefix, Array.from({ length: n }, (_, k) => syntheticNode(k + 1)))
      const wgIf = `${TAG}w${i}`
      const port = 19000 + i
      const d = join(dir, `n${n}`)
      daemon = spawn(process.execPath, [...NODE_FLAGS, ...(PROF_DIR !== '' ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : []), DAEMON, '--etcd-endpoints', etcd.endpoint, '--prefix', prefix, '--node-name', 'self',
        '--public-address', '192.0.2.2', '--wg-interface', wgIf, '--vxlan-interface', `${TAG}x${i}`, '--wg-mode', 'userspace',
        '--state-dir', join(d, 'state'), '--cni-conf-dir', join(d, 'cni'), '--cni-data-dir', join(d, 'ipam'),
        '--cni-bridge', `${TAG}br${i}`, '--metrics-address', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: ['ignore', NODE_FLAGS.length > 0 ? 'inherit' : 'ignore', 'inherit'] })
      const readyMs = await waitReady(`http://127.0.0.1:${port}/readyz`, daemon, 120_000)
      await sleep(5000) // let start-up garbage be collected
      const pid = daemon.pid as number
      const rss = await rssMiB(pid)
      const wgPid = wireguardGoPids(wgIf)[0]
      const wgRss = wgPid !== undefined ? await rssMiB(wgPid) : NaN
      rows.push({ metric: `N=${n} podmeshd RSS at idle`, value: rss, unit: 'MiB', floor: floorRss, target: n >= 5000 ? 150 : undefined, note: `ready in ${readyMs} ms; wireguard-go RSS ${wgRss.toFixed(0)} MiB` })
      if (measuresCpu(n) && IDLE_S > 0) {
        await sleep(Math.max(0, SETTLE_S * 1000 - 5000))
        const c0 = await cpuSeconds(pid); const t0 = Date.now()
        await sleep(IDLE_S * 1000)
        const c1 = await cpuSeconds(pid); const seconds = (Date.now() - t0) / 1000
        const pct = (x: number): number => x / seconds * 100
        const user = pct(c1.user - c0.user); const system = pct(c1.system - c0.system)
        rows.push({ metric: `N=${n} podmeshd CPU over ${IDLE_S} s idle`, value: user + system, unit: '% core', target: 1, note: `user ${user.toFixed(2)} + system ${system.toFixed(2)}; by thread: ${threadSplit(c0.threads, c1.threads, seconds)}; from ${SETTLE_S} s after ready; resyncs every 30 s (default)` })
        rows.push({ metric: `N=${n} podmeshd RSS after idle`, value: await rssMiB(pid), unit: 'MiB' })
      }
      daemon.kill('SIGTERM')
      await new Promise(resolve => daemon?.once('exit', resolve))
      daemon = undefined
      try { execFileSync('ip', ['link', 'del', wgIf]) } catch {}
    }
    printReport('footprint', rows, { sizes: sizes.join(','), idleSeconds: IDLE_S, settleSeconds: SETTLE_S, resyncInterval: '30s' })
  } finally {
    daemon?.kill('SIGKILL')
    client.close()
    await etcd.destroy()
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv.includes('--inner')) {
  inner().then(() => process.exit(0), e => { process.stderr.write(`footprint: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })
} else {
  runInNetns(__filename, process.argv.slice(2)).then(code => process.exit(code), e => { process.stderr.write(`${String(e)}\n`); process.exit(1) })
}

// Storm (issue #10): one record flapping at 500 puts/s against the compiled podmeshd in a netns
// (real etcd, real wireguard-go). The record's endpoint alternates between two ports, so every
// pass that sees it has a real peer change to apply (one `wg set`). Counts, over --seconds:
// passes (podmesh_reconcile_total), applies = `wg` spawns (podmesh_apply_duration_seconds_count:
// one `wg` per non-empty apply), and status/<node> writes (the key's etcd version). The bounds
// they are compared with: a burst of 10 then 20 passes/s (token bucket), 1 status write/s.
// Prints figures; never fails on them.
//
//   npm run -s bench:storm [-- --seconds 10 --rate 500] [--json]
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EtcdProcess } from '../test/harness/etcd'
import { connectStore, type StoreClient } from '../lib/store/client'
import { writeConfig } from '../lib/store/config-store'
import { nodeKey, statusKey } from '../lib/store/keys'
import { SCALE_CONFIG, syntheticNode, putNodes } from './synthetic'
import { printReport, type Row } from './report'
import { REPO, runInNetns } from './netns-run'
import { sized } from './smoke'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const SECONDS = Number(arg('--seconds', sized('10', '2')))
const RATE = Number(arg('--rate', '500'))
const TAG = process.env.BENCH_TAG ?? 'bx'
const DAEMON = join(REPO, 'dist', 'cmd', 'podmeshd.js')
const PREFIX = '/bench/storm/'
const PORT = 19100
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

async function metric (name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${PORT}/metrics`)).text()
  return text.split('\n').filter(l => l.startsWith(name)).reduce((n, l) => n + Number(l.split(' ').at(-1)), 0)
}
const statusVersion = async (client: StoreClient): Promise<number> =>
  Number((await client.get(statusKey(PREFIX, 'self')).exec()).kvs[0]?.version ?? 0)

async function inner (): Promise<void> {
  const etcd = await EtcdProcess.create()
  const dir = await mkdtemp(join(tmpdir(), 'podmesh-bench-storm-'))
  const client = await connectStore({ endpoints: etcd.endpoints } as Parameters<typeof connectStore>[0])
  let daemon: ChildProcess | undefined
  const wgIf = `${TAG}ws`
  try {
    await writeConfig(client, PREFIX, SCALE_CONFIG)
    const nodes = Array.from({ length: 10 }, (_, k) => syntheticNode(k + 1))
    await putNodes(client, PREFIX, nodes)
    daemon = spawn(process.execPath, [DAEMON, '--etcd-endpoints', etcd.endpoint, '--prefix', PREFIX, '--node-name', 'self',
      '--public-address', '192.0.2.2', '--wg-interface', wgIf, '--vxlan-interface', `${TAG}xs`, '--wg-mode', 'userspace',
      '--state-dir', join(dir, 'state'), '--cni-conf-dir', join(dir, 'cni'), '--cni-data-dir', join(dir, 'ipam'),
      '--cni-bridge', `${TAG}brs`, '--metrics-address', `127.0.0.1:${PORT}`, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] })
    const t0 = Date.now()
    for (;;) {
      if (daemon.exitCode !== null) throw new Error(`podmeshd exited with ${daemon.exitCode}`)
      try { if ((await (await fetch(`http://127.0.0.1:${PORT}/readyz`)).text()).startsWith('ready')) break } catch {}
      if (Date.now() - t0 > 120_000) throw new Error('podmeshd not ready after 120 s')
      await sleep(100)
    }
    await sleep(2000)
    const flapping = nodes[0] as NonNullable<typeof nodes[0]>
    const before = { passes: await metric('podmesh_reconcile_total'), applies: await metric('podmesh_apply_duration_seconds_count'), status: await statusVersion(client) }
    process.stderr.write(`storm: ${RATE} puts/s of ${flapping.name} for ${SECONDS} s…\n`)
    const started = Date.now()
    let puts = 0
    // Puts paced to RATE a second, a few in flight (one client, as a hostile writer would use).
    while (Date.now() - started < SECONDS * 1000) {
      const due = Math.floor((Date.now() - started) / 1000 * RATE)
      const batch: Array<Promise<unknown>> = []
      while (puts < due) {
        const port = 51820 + (puts % 2)
        batch.push(client.put(nodeKey(PREFIX, flapping.name)).value(JSON.stringify({ ...flapping, endpoint: `192.0.2.100:${port}`, generation: puts + 2 })).exec())
        puts++
      }
      await Promise.all(batch)
      await sleep(2)
    }
    const elapsed = (Date.now() - started) / 1000
    await sleep(1500) // the last pass and the last spaced status write land
    const after = { passes: await metric('podmesh_reconcile_total'), applies: await metric('podmesh_apply_duration_seconds_count'), status: await statusVersion(client) }
    const per = (n: number): number => n / elapsed
    // Counted up to 1.5 s after the storm: the bucket's burst once, then 20/s over that span.
    const passBound = Math.round((10 + 20 * (elapsed + 1.5)) / elapsed * 10) / 10
    const rows: Row[] = [
      { metric: 'puts/s of one record (achieved)', value: per(puts), unit: '/s' },
      { metric: 'reconcile passes/s', value: per(after.passes - before.passes), unit: '/s', target: passBound, note: 'bound: burst 10, then 20/s' },
      { metric: 'wg spawns/s (non-empty applies)', value: per(after.applies - before.applies), unit: '/s', target: passBound, note: 'one `wg` per apply' },
      { metric: 'status writes/s', value: per(after.status - before.status), unit: '/s', target: 1.2, note: 'bound: 1 s gap (+ the last one)' }
    ]
    printReport('storm', rows, { seconds: SECONDS, rate: RATE, peers: nodes.length })
  } finally {
    daemon?.kill('SIGTERM')
    if (daemon !== undefined && daemon.exitCode === null) await new Promise(resolve => daemon?.once('exit', resolve))
    try { execFileSync('ip', ['link', 'del', wgIf]) } catch {}
    client.close()
    await etcd.destroy()
    await rm(dir, { recursive: true, force: true })
  }
}

if (process.argv.includes('--inner')) {
  inner().then(() => process.exit(0), e => { process.stderr.write(`storm: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })
} else {
  runInNetns(__filename, process.argv.slice(2)).then(code => process.exit(code), e => { process.stderr.write(`${String(e)}\n`); process.exit(1) })
}

// Services at scale (issue #11, acceptance 7): N services × 10 endpoints in podmesh's nft table,
// in namespaces of its own (a node, a pod serving TCP on ten addresses, a client behind the
// node). For each N: (1) a full sync along podmesh's path (ruleset → render → one `nft -f`)
// against the floor, the same script written to a file beforehand and loaded by one `nft -f`;
// (2) one endpoint change (ruleset → diff → render → apply) and the processes it spawned, the
// ruleset built incrementally as the daemon would (RulesetBuilder); the same for an endpoint
// added and removed again (the service's element moves to another pick chain), each against
// the floor of one spawn of `nft -f -` with an empty script from the same process;
// (3) TCP connection setup from the client to a ClusterIP with 10 and with N services present,
// beside an iptables-style linear chain of N `ip daddr … dnat` rules (the VIP under test last)
// in a table of its own, measured in the same run. Prints figures; never fails on them.
//
//   npm run -s bench:services [-- --sizes 1000,10000 --rounds 3 --connects 200] [--json]
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { ServiceRuleset } from '../lib/service/rules'
import { RulesetBuilder } from '../lib/service/ruleset'
import type { Endpoint, ServiceSpec } from '../lib/service/types'
import { diffRulesets } from '../lib/service/rules-diff'
import { renderChange, renderFullSync } from '../lib/dataplane/nft/render'
import { applyNftScript, applyServiceRules, removeServiceTable } from '../lib/dataplane/nft/apply'
import { run, spawnCount } from '../lib/dataplane/exec'
import { printReport, ms, now, percentile, type Row } from './report'
import { benchTag, TS_LOADER } from './netns-run'
import { sized } from './smoke'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const SIZES = arg('--sizes', sized('1000,10000', '50')).split(',').map(Number)
const ROUNDS = Number(arg('--rounds', sized('3', '1')))
const CONNECTS = Number(arg('--connects', sized('200', '30')))
const ENDPOINTS = 10
const BASELINE = 10
/** Changes measured per kind (alternating there and back), at least: cheap enough now to take a median of several. */
const CHANGE_ROUNDS = 9

const NODE_SIDE = '10.244.1.1'
const POD_IPS = Array.from({ length: ENDPOINTS }, (_, i) => `10.244.1.${i + 2}`)
const SPARE_IP = '10.244.1.200'
const PORT = 80
const TARGET_PORT = 8080
const TESTED = 'tested'
const TESTED_VIP = '10.96.255.254'
const LINEAR_TESTED_VIP = '10.97.255.254'
const LINEAR_TABLE = 'podmesh_bench_linear'

// The VIP of the i-th filler service (i < 65,000): 10.96.0.0/16 without the tested one.
const vip = (net: number, i: number): string => `10.${net}.${(i + 1) >> 8}.${(i + 1) & 255}`

const spec = (name: string, clusterIP: string): ServiceSpec => ({
  v: 1, name, type: 'ClusterIP', clusterIPs: [clusterIP], ports: [{ protocol: 'tcp', port: PORT, targetPort: TARGET_PORT }],
  selector: { app: name }, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster'
})
const endpoints = (ips: readonly string[]): Endpoint[] => ips.map((ip, i) => ({ ip, node: 'n1', pod: `p${i}`, local: true }))

/** n services (n − 1 fillers and the tested one, which sorts last), each with the pod's ten addresses. */
function services (n: number): { services: ServiceSpec[], endpoints: Map<string, Endpoint[]> } {
  const svcs = Array.from({ length: n - 1 }, (_, i) => spec(`s${String(i).padStart(6, '0')}`, vip(96, i)))
  svcs.push(spec(TESTED, TESTED_VIP))
  return { services: svcs, endpoints: new Map(svcs.map(s => [s.name, endpoints(POD_IPS)])) }
}
type Input = ReturnType<typeof services>
const ruleset = (input: Input, builder = new RulesetBuilder()): ServiceRuleset =>
  builder.build({ ...input, node: 'n1', nodeAddresses: { 4: ['192.0.2.1'] } })

/** An iptables-style chain: one rule per service, tested in order; the tested VIP is last. */
function linearTable (n: number): string {
  const rules = Array.from({ length: n - 1 }, (_, i) => `  ip daddr ${vip(97, i)} tcp dport ${PORT} dnat to ${POD_IPS[0] as string}:${TARGET_PORT}`)
  rules.push(`  ip daddr ${LINEAR_TESTED_VIP} tcp dport ${PORT} dnat to ${POD_IPS[0] as string}:${TARGET_PORT}`)
  // After podmesh's dstnat (-100): a packet podmesh already DNATed skips it, one to 10.97/16 misses podmesh's map.
  return `table ip ${LINEAR_TABLE}\ndelete table ip ${LINEAR_TABLE}\ntable ip ${LINEAR_TABLE} {\n chain prerouting {\n  type nat hook prerouting priority -90; policy accept;\n${rules.join('\n')}\n }\n}\n`
}

/** One `nft -f <file>`; no timeout short of 10 minutes (a 10,000-service table takes tens of seconds here). */
const loadFile = (file: string): void => { execFileSync('nft', ['-f', file], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 }) }

const median = (xs: readonly number[]): number => percentile(xs, 50)

// Connects COUNT times in sequence (a new flow each), after 10 unmeasured ones; prints the setup times (ms) as JSON.
const CLIENT = `
const net = require('net')
const [host, port, count] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])]
const once = () => new Promise(res => {
  const t0 = process.hrtime.bigint()
  const s = net.connect({ host, port })
  const timer = setTimeout(() => { s.destroy(); res(-1) }, 3000)
  s.once('connect', () => { const t = Number(process.hrtime.bigint() - t0) / 1e6; clearTimeout(timer); s.destroy(); res(t) })
  s.once('error', () => { clearTimeout(timer); res(-1) })
})
;(async () => { for (let i = 0; i < 10; i++) await once(); const out = []; for (let i = 0; i < count; i++) out.push(await once()); console.log(JSON.stringify(out)) })()`

const SERVER = `
require('net').createServer(s => { s.on('error', () => {}); s.end() }).listen(${TARGET_PORT}, '0.0.0.0', () => console.log('ready'))`

/** `count` connects from the client namespace: the setup times (ms) of those that succeeded, and how many failed. */
async function connects (clientNs: string, host: string, count: number): Promise<{ times: number[], failed: number }> {
  const out = execFileSync('ip', ['netns', 'exec', clientNs, process.execPath, '-e', CLIENT, host, String(PORT), String(count)], { encoding: 'utf8', timeout: 60_000 + count * 3000 })
  const xs = JSON.parse(out) as number[]
  const times = xs.filter(x => x >= 0)
  return { times, failed: xs.length - times.length }
}

async function startServer (podNs: string): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', podNs, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', () => resolve())
    child.once('exit', code => reject(new Error(`server in ${podNs} exited (${String(code)})`)))
  })
  return child
}

async function measure (n: number, clientNs: string, dir: string): Promise<Row[]> {
  const rows: Row[] = []
  const input = services(n)

  // (1) Full sync from an empty namespace, podmesh's path against one load of the same script.
  const path: number[] = []; const floor: number[] = []; const fullPure: number[] = []
  let rs = ruleset(input)
  const script = renderFullSync(rs)
  const file = join(dir, `full-${n}.nft`)
  writeFileSync(file, script)
  let refused: string | undefined
  for (let r = 0; r < ROUNDS; r++) {
    await removeServiceTable()
    const t0 = now()
    try {
      rs = ruleset(input)
      const built = ms(t0)
      await applyServiceRules(rs)
      path.push(ms(t0))
      // The pure share: the build above, and the render applyServiceRules did, timed again here.
      const t2 = now()
      renderFullSync(rs)
      fullPure.push(built + ms(t2))
    } catch (e) {
      // Kept as a figure: podmesh's apply has a timeout (apply.ts, nftTimeoutMs) that a slow nft can pass.
      refused = `podmesh's apply failed after ${ms(t0).toFixed(0)} ms: ${(e as Error).message.slice(0, 60)}`
    }
    await removeServiceTable()
    const t1 = now()
    loadFile(file)
    floor.push(ms(t1))
  }
  const p = path.length > 0 ? median(path) : NaN; const f = median(floor)
  rows.push({ metric: `N=${n}: full sync, podmesh (ruleset+render+nft -f)`, value: p, unit: 'ms', floor: f, note: `median of ${path.length}/${ROUNDS}; pure part (ruleset+render) ${fullPure.length > 0 ? median(fullPure).toFixed(0) : '-'} ms; ${script.length >= 1e5 ? `${(script.length / 1e6).toFixed(1)} MB` : `${(script.length / 1e3).toFixed(0)} kB`} script${refused !== undefined ? `; ${refused}` : ''}` })
  rows.push({ metric: `N=${n}: full sync / floor (one nft -f of the same script)`, value: p / f, unit: 'x', target: 1.5 })

  // (2) One endpoint change among N services: the tested service's last endpoint swapped, and back;
  // then one endpoint added and removed again. The builder has built `input` once (as the daemon's
  // would have at its full sync); the pure share is measured on a twin builder in the same state,
  // repeating the same steps.
  const builder = new RulesetBuilder()
  const twin = new RulesetBuilder()
  let previous = ruleset(input, builder)
  let twinPrevious = ruleset(input, twin)
  // The floor of a change from this process: one `nft -f -` of an empty script (a fork of this
  // process, now large, and nft's start), which no apply can go below.
  const spawnFloor: number[] = []
  for (let r = 0; r < CHANGE_ROUNDS; r++) {
    const t0 = now()
    await run('nft', ['-f', '-'], { input: '' })
    spawnFloor.push(ms(t0))
  }
  const changes = async (label: string, variants: string[][]): Promise<void> => {
    const change: number[] = []; const pure: number[] = []; const spawns: number[] = []; const kinds = new Set<string>()
    for (let r = 0; r < Math.max(ROUNDS, CHANGE_ROUNDS); r++) {
      const changed = { services: input.services, endpoints: new Map(input.endpoints).set(TESTED, endpoints(variants[r % variants.length] as string[])) }
      const s0 = spawnCount()
      const t0 = now()
      const next = ruleset(changed, builder)
      const kind = await applyServiceRules(next, previous)
      change.push(ms(t0))
      spawns.push(spawnCount() - s0)
      kinds.add(kind)
      const t1 = now()
      const twinNext = ruleset(changed, twin)
      const d = diffRulesets(twinPrevious, twinNext)
      if (d !== 'full') renderChange(d)
      pure.push(ms(t1))
      previous = next
      twinPrevious = twinNext
    }
    rows.push({ metric: `N=${n}: ${label} (ruleset+diff+render+apply)`, value: median(change), unit: 'ms', floor: median(spawnFloor), target: 50, note: `median of ${change.length}, max ${Math.max(...change).toFixed(1)} ms; apply: ${[...kinds].join(',')}` })
    rows.push({ metric: `N=${n}: ${label}: pure part (ruleset+diff+render)`, value: median(pure), unit: 'ms', note: `the rest is the one nft -f: ~${(median(change) - median(pure)).toFixed(0)} ms` })
    rows.push({ metric: `N=${n}: ${label}: processes spawned`, value: Math.max(...spawns), unit: 'spawns', target: 1 })
  }
  await changes('one endpoint change', [[...POD_IPS.slice(0, -1), SPARE_IP], POD_IPS])
  await changes('one endpoint added/removed', [[...POD_IPS, SPARE_IP], POD_IPS])
  // Leave the tested service with the pod's ten addresses.
  await applyServiceRules(ruleset(input, builder), previous)
  const fewFile = join(dir, `full-${BASELINE}.nft`)
  writeFileSync(fewFile, renderFullSync(ruleset(services(BASELINE))))

  // (3) Connection setup through the ClusterIP, 10 against N services, in alternating blocks
  // (A B A B) so that the machine's drift falls on both; the linear chain the same way.
  const few: number[][] = []; const many: number[][] = []; const linFew: number[][] = []; const linMany: number[][] = []
  let failed = 0
  const block = async (into: number[][], host: string): Promise<void> => {
    const r = await connects(clientNs, host, Math.ceil(CONNECTS / 2)); into.push(r.times); failed += r.failed
  }
  for (let b = 0; b < 2; b++) {
    // Set-up, not measured: straight from the scripts, without podmesh's apply timeout.
    loadFile(fewFile)
    await block(few, TESTED_VIP)
    loadFile(file)
    await block(many, TESTED_VIP)
  }
  for (let b = 0; b < 2; b++) {
    await applyNftScript(linearTable(BASELINE))
    await block(linFew, LINEAR_TESTED_VIP)
    await applyNftScript(linearTable(n))
    await block(linMany, LINEAR_TESTED_VIP)
  }
  await applyNftScript(`table ip ${LINEAR_TABLE}\ndelete table ip ${LINEAR_TABLE}\n`)
  const [fewM, manyM, linFewM, linManyM] = [few, many, linFew, linMany].map(x => median(x.flat())) as [number, number, number, number]
  const p99 = (x: number[][]): string => percentile(x.flat(), 99).toFixed(3)
  const count = many.flat().length
  rows.push({ metric: `N=${n}: connect to a ClusterIP, podmesh, ${n} services`, value: manyM, unit: 'ms', floor: fewM, note: `median of ${count}; floor: ${BASELINE} services; p99 ${p99(many)} / ${p99(few)} ms${failed > 0 ? `; ${failed} connects FAILED` : ''}` })
  rows.push({ metric: `N=${n}: connect, podmesh: ${n} / ${BASELINE} services`, value: manyM / fewM, unit: 'x', target: 1.1 })
  rows.push({ metric: `N=${n}: connect, linear chain (VIP last), ${n} rules`, value: linManyM, unit: 'ms', floor: linFewM, note: `floor: ${BASELINE} rules; p99 ${p99(linMany)} / ${p99(linFew)} ms` })
  rows.push({ metric: `N=${n}: connect, linear chain: ${n} / ${BASELINE} rules`, value: linManyM / linFewM, unit: 'x' })
  return rows
}

async function inner (): Promise<void> {
  const podNs = process.env.BENCH_POD_NS ?? ''
  const clientNs = process.env.BENCH_CLIENT_NS ?? ''
  if (podNs === '' || clientNs === '') throw new Error('--inner needs BENCH_POD_NS and BENCH_CLIENT_NS')
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-bench-services-'))
  const server = await startServer(podNs)
  try {
    // Unmeasured: the first call of each pure function pays for its compilation.
    const warm = ruleset(services(BASELINE))
    const d = diffRulesets(warm, ruleset(services(BASELINE + 1)))
    renderFullSync(warm); if (d !== 'full') renderChange(d)
    const rows: Row[] = []
    for (const n of SIZES) {
      process.stderr.write(`services: N=${n}…\n`)
      rows.push(...await measure(n, clientNs, dir))
    }
    printReport('services', rows, { sizes: SIZES.join(','), endpointsPerService: ENDPOINTS, rounds: ROUNDS, connects: CONNECTS, nft: execFileSync('nft', ['--version'], { encoding: 'utf8' }).trim() })
  } finally {
    try { if (server.pid !== undefined) process.kill(-server.pid, 'SIGKILL') } catch {}
    rmSync(dir, { recursive: true, force: true })
  }
}

const ip = (...args: string[]): void => { execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }) }

/** Kills what still runs in our namespaces (the server, a client), by PID, then removes them. */
function removeNamespaces (names: readonly string[]): void {
  for (const ns of names) {
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').map(Number).filter(n => n > 0)) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
    } catch {}
    try { ip('netns', 'del', ns) } catch {}
  }
}

/** The node (where the measuring half and nft run), a pod on ten addresses, a client behind the node. */
async function outer (): Promise<number> {
  const tag = benchTag()
  const [node, pod, client] = [`${tag}nd`, `${tag}pd`, `${tag}cl`]
  const all = [node, pod, client]
  const onSignal = (): void => { removeNamespaces(all); process.exit(130) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    for (const ns of all) { ip('netns', 'add', ns); ip('-n', ns, 'link', 'set', 'lo', 'up') }
    ip('netns', 'exec', node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1')
    ip('-n', node, 'link', 'add', `${tag}p0`, 'type', 'veth', 'peer', 'name', `${tag}p1`, 'netns', pod)
    ip('-n', node, 'addr', 'add', `${NODE_SIDE}/24`, 'dev', `${tag}p0`)
    ip('-n', node, 'link', 'set', `${tag}p0`, 'up')
    for (const a of POD_IPS) ip('-n', pod, 'addr', 'add', `${a}/24`, 'dev', `${tag}p1`)
    ip('-n', pod, 'link', 'set', `${tag}p1`, 'up')
    ip('-n', pod, 'route', 'add', 'default', 'via', NODE_SIDE)
    ip('-n', node, 'link', 'add', `${tag}c0`, 'type', 'veth', 'peer', 'name', `${tag}c1`, 'netns', client)
    ip('-n', node, 'addr', 'add', '192.0.2.1/24', 'dev', `${tag}c0`)
    ip('-n', node, 'link', 'set', `${tag}c0`, 'up')
    ip('-n', client, 'addr', 'add', '192.0.2.2/24', 'dev', `${tag}c1`)
    ip('-n', client, 'link', 'set', `${tag}c1`, 'up')
    ip('-n', client, 'route', 'add', 'default', 'via', '192.0.2.1')
    const child = spawn('ip', ['netns', 'exec', node, process.execPath, `--import=${TS_LOADER}`, __filename, '--inner', ...process.argv.slice(2)],
      { stdio: 'inherit', env: { ...process.env, BENCH_TAG: tag, BENCH_POD_NS: pod, BENCH_CLIENT_NS: client } })
    return await new Promise<number>(resolve => child.on('exit', code => resolve(code ?? 1)))
  } finally {
    removeNamespaces(all)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

if (process.argv.includes('--inner')) {
  inner().then(() => process.exit(0), e => { process.stderr.write(`services: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })
} else {
  outer().then(code => process.exit(code), e => { process.stderr.write(`services: ${String(e)}\n`); process.exit(1) })
}

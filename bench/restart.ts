// Restart benchmark (issue #6, item 4) in the netns lab (test/lab/cluster.ts): 2 podmeshd nodes,
// a pod on each; a pod on node-1 pings the pod on node-2 at ≥ 100/s (`ping -D -i 0.009`, see INTERVAL) while
// node-2's daemon is restarted --restarts times (SIGTERM, wait for exit, start, wait ready).
// Reports packets sent and lost (lost = sequence numbers never answered, counted up to the last
// answered one: ping stops 1.5 s after the last restart, so only in-flight packets follow it) and, per restart, SIGTERM→ready and start→ready, from
// the daemon's own "ready" log line (pino epoch ms, same clock), not from the /readyz poll.
// Floor: a bare `node -e 0` spawned through `ip netns exec` in the node's namespace.
//
//   npm run -s bench:restart [-- --backend vxlan] [--restarts 10] [--interval 0.009] [--json]
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { readFileSync, statSync } from 'node:fs'
import { Lab, sleep, type LabNode } from '../test/lab/cluster'
import { printReport, percentile, type Row } from './report'
import { sized } from './smoke'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const BACKEND = arg('--backend', 'wireguard') === 'vxlan' ? 'vxlan' : 'wireguard'
const RESTARTS = Number(arg('--restarts', sized('10', '2')))
// iputils ping 20221126 here sends only ~60/s with `-i 0.01` (it waits ~16 ms between packets,
// measured on loopback), but every 9 ms with `-i 0.009`: that one is ≥ 100/s as the issue asks.
const INTERVAL = arg('--interval', '0.009')

/** Time of the first log line at or after `offset` whose msg matches, from the pino `time` field. */
function logTime (node: LabNode, offset: number, msg: RegExp): number | undefined {
  const text = readFileSync(node.logFile, 'utf8').slice(offset)
  for (const line of text.split('\n')) {
    try {
      const rec = JSON.parse(line) as { time?: number, msg?: string }
      if (rec.msg !== undefined && msg.test(rec.msg)) return rec.time
    } catch { /* partial last line */ }
  }
  return undefined
}

const logSize = (node: LabNode): number => { try { return statSync(node.logFile).size } catch { return 0 } }

/** The floor: spawn → exit of `node -e 0` through `ip netns exec` in `ns`, median of 10. */
async function nodeFloor (ns: string): Promise<number[]> {
  const xs: number[] = []
  for (let i = 0; i < 10; i++) {
    const t = Date.now()
    await new Promise<void>((resolve, reject) => {
      const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', '0'], { stdio: 'ignore' })
      p.on('error', reject)
      p.on('exit', () => resolve())
    })
    xs.push(Date.now() - t)
  }
  return xs
}

async function main (): Promise<void> {
  const lab = await Lab.create({ nodes: 2, podsPerNode: 1, backend: BACKEND, dualStack: false })
  let pinger: ChildProcess | undefined
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { pinger?.kill('SIGKILL'); lab.destroy().finally(() => process.exit(130)) })
  }
  try {
    const [n1, n2] = lab.nodes as [LabNode, LabNode]
    const src = n1.pods[0]; const dst = n2.pods[0]
    const dstIp = dst?.ips[0]
    if (src === undefined || dstIp === undefined) throw new Error('lab has no pods')
    if (!await lab.ping(src.ns, dstIp, { count: 3, interval: '0.2', timeoutS: 5 })) throw new Error(`${src.name} cannot reach ${dstIp} before the restarts`)
    process.stderr.write(`restart: ${BACKEND}, ${src.name} → ${dst?.name} ${dstIp} at -i ${INTERVAL}, restarting ${n2.name} ${RESTARTS}×\n`)

    const replies = new Set<number>()
    let summary = ''
    const pingStart = Date.now()
    pinger = spawn('ip', ['netns', 'exec', src.ns, 'ping', '-D', '-n', '-i', INTERVAL, '-W', '1', dstIp], { stdio: ['ignore', 'pipe', 'ignore'] })
    createInterface({ input: pinger.stdout! }).on('line', l => {
      const m = /^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)/.exec(l)
      if (m !== null) replies.add(Number(m[2])); else summary += l + '\n'
    })
    const pingDone = new Promise<void>(resolve => pinger?.once('exit', () => resolve()))
    await sleep(1000)

    const toReady: number[] = []; const startToReady: number[] = []; const stopMs: number[] = []; const toFirstLog: number[] = []
    const windows: Array<[number, number]> = []
    for (let r = 0; r < RESTARTS; r++) {
      const t0 = Date.now()
      await n2.stop()
      const tExit = Date.now()
      const offset = logSize(n2) // after the old process's last line
      await n2.start()
      const ready = logTime(n2, offset, /ready$/)
      const first = logTime(n2, offset, /./)
      if (ready === undefined) throw new Error(`no ready line in ${n2.name}'s log after restart ${r + 1}:\n${n2.logTail()}`)
      stopMs.push(tExit - t0)
      toReady.push(ready - t0)
      startToReady.push(ready - tExit)
      // The first line is written after options parse: module load + process start.
      if (first !== undefined) toFirstLog.push(first - tExit)
      windows.push([t0, ready])
      process.stderr.write(`restart ${r + 1}/${RESTARTS}: exit ${tExit - t0} ms, start→ready ${ready - tExit} ms\n`)
      await sleep(500)
    }
    await sleep(1000) // the path is steady again: whatever is unanswered after the last reply was only in flight
    pinger.kill('SIGINT')
    await pingDone
    const pingSeconds = (Date.now() - pingStart) / 1000
    const sentMatch = /(\d+) packets transmitted/.exec(summary)
    const transmitted = sentMatch !== null ? Number(sentMatch[1]) : Math.max(0, ...replies)
    // Count up to the last answered sequence number: later ones were in flight when ping stopped.
    const counted = Math.min(transmitted, Math.max(0, ...replies))
    const lost: number[] = []
    for (let s = 1; s <= counted; s++) if (!replies.has(s)) lost.push(s)
    const lostNote = lost.length === 0 ? '' : `lost seq ${lost.slice(0, 10).join(',')}${lost.length > 10 ? '…' : ''}`

    const floor = await nodeFloor(n2.ns)
    const floorP50 = percentile(floor, 50)
    const rows: Row[] = [
      { metric: 'floor: `node -e 0` in the netns (p50 of 10)', value: floorP50, unit: 'ms', note: `max ${Math.max(...floor)} ms` },
      { metric: `pings sent (-i ${INTERVAL})`, value: counted, unit: 'packets', note: `${transmitted} transmitted in ${pingSeconds.toFixed(1)} s = ${(transmitted / pingSeconds).toFixed(0)}/s` },
      { metric: 'pings lost', value: lost.length, unit: 'packets', target: 0, note: lostNote },
      { metric: 'restarts measured', value: toReady.length, unit: 'restarts', target: RESTARTS, targetKind: 'min' },
      { metric: 'SIGTERM→exit p50', value: percentile(stopMs, 50), unit: 'ms', note: `max ${Math.max(...stopMs)} ms` },
      { metric: 'start→first log line p50', value: percentile(toFirstLog, 50), unit: 'ms', floor: floorP50, note: 'process + module load' },
      { metric: 'start→ready p50', value: percentile(startToReady, 50), unit: 'ms', floor: floorP50 },
      { metric: 'start→ready max', value: Math.max(...startToReady), unit: 'ms', floor: floorP50 },
      { metric: 'SIGTERM→ready again p50', value: percentile(toReady, 50), unit: 'ms', floor: floorP50 },
      { metric: 'SIGTERM→ready again max', value: Math.max(...toReady), unit: 'ms', floor: floorP50 }
    ]
    printReport('restart', rows, {
      backend: BACKEND === 'wireguard' ? 'wireguard (wireguard-go)' : 'vxlan',
      restarts: RESTARTS,
      pingInterval: INTERVAL,
      load1: (await import('node:os')).loadavg()[0]?.toFixed(2)
    })
  } finally {
    if (pinger !== undefined && pinger.exitCode === null) pinger.kill('SIGKILL')
    await lab.destroy()
  }
}

main().then(() => process.exit(0), e => { process.stderr.write(`restart: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })

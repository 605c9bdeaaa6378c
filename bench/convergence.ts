// Join convergence (issue #6, item 1) in the netns lab (test/lab/cluster.ts): a cluster of
// --nodes (default 10) podmeshd nodes, one of which leaves (--leave) and joins again 20 times.
// For each join, from the moment its record appears in etcd (an `etcdctl watch` in the hub) to
// (a) its route in every other node's kernel (`ip monitor route` per node; podmesh sets the peer
// before the route), (b) the first ping reply from a pod on every other node to the new node's pod
// (`ping -D -i 0.01` running throughout); and for each leave (`podmeshctl node remove`), from
// the record's deletion to (c) its route gone from every other node's kernel. Floor: etcd watch
// delivery + one `wg set` + one route add, measured in the same lab.
//
//   npm run -s bench:convergence [-- --nodes 10 --joins 20] [--json]
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { randomBytes } from 'node:crypto'
import { Lab, nsExec, sleep, killWireguardGo, type LabNode } from '../test/lab/cluster'
import { printReport, percentile, type Row } from './report'
import { TS_LOADER } from './netns-run'
import { sized } from './smoke'

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1] ?? def) : def
}
const NODES = arg('--nodes', sized(10, 3))
const JOINS = arg('--joins', sized(20, 2))
const PREFIX = '/podmesh/default/'

/** Streams a long-running command's stdout lines with their arrival time (ms, wall clock). */
function stream (cmd: string, args: string[], onLine: (line: string, at: number) => void): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] })
  createInterface({ input: p.stdout! }).on('line', l => onLine(l, Date.now()))
  return p
}

async function floorWgRoute (lab: Lab, node: LabNode): Promise<{ wg: number[], route: number[] }> {
  const ifname = `${lab.id}fl`
  const wg: number[] = []; const route: number[] = []
  await nsExec(node.ns, ['wireguard-go', ifname])
  try {
    await nsExec(node.ns, ['ip', 'link', 'set', ifname, 'up'])
    for (let i = 0; i < 10; i++) {
      const key = randomBytes(32).toString('base64')
      let t = Date.now()
      await nsExec(node.ns, ['wg', 'set', ifname, 'peer', key, 'endpoint', '192.0.2.250:51820', 'allowed-ips', '10.250.0.0/24'])
      wg.push(Date.now() - t)
      t = Date.now()
      await nsExec(node.ns, ['ip', 'route', 'add', '10.250.0.0/24', 'dev', ifname])
      route.push(Date.now() - t)
      await nsExec(node.ns, ['ip', 'route', 'del', '10.250.0.0/24', 'dev', ifname])
      await nsExec(node.ns, ['wg', 'set', ifname, 'peer', key, 'remove'])
    }
  } finally {
    await nsExec(node.ns, ['ip', 'link', 'del', ifname], { allowFail: true })
    await killWireguardGo(ifname)
  }
  return { wg, route }
}

async function main (): Promise<void> {
  const lab = await Lab.create({ nodes: NODES - 1, podsPerNode: 1, backend: 'wireguard', dualStack: false })
  const procs: ChildProcess[] = []
  const stopAll = (): void => { for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL') }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { stopAll(); lab.destroy().finally(() => process.exit(130)) })
  try {
    const others = [...lab.nodes]
    const joiner = await lab.addNode(NODES)
    await joiner.start()
    const pod = await joiner.addPod(1)
    const podIp = pod.ips[0] as string
    const subnet = podIp.replace(/\.\d+$/, '.0/24')
    process.stderr.write(`convergence: ${NODES} nodes, joiner ${joiner.name} subnet ${subnet}, pod ${podIp}\n`)

    // Record appearances, seen from the hub (where etcd runs).
    const recordAt: number[] = []; const deletedAt: number[] = []
    procs.push(stream('ip', ['netns', 'exec', lab.hub, 'env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', lab.etcdUrl,
      'watch', `${PREFIX}nodes/${joiner.name}`], (l, at) => { if (l === 'PUT') recordAt.push(at); if (l === 'DELETE') deletedAt.push(at) }))
    // Route adds and deletes in every other node's kernel.
    const routeAt = new Map<string, number[]>(others.map(n => [n.name, []]))
    const routeGoneAt = new Map<string, number[]>(others.map(n => [n.name, []]))
    for (const n of others) {
      procs.push(stream('ip', ['-n', n.ns, 'monitor', 'route'], (l, at) => {
        if (l.startsWith(`${subnet} dev`)) routeAt.get(n.name)?.push(at)
        if (l.startsWith(`Deleted ${subnet} dev`)) routeGoneAt.get(n.name)?.push(at)
      }))
    }
    // Ping replies from a pod on every other node (timestamps from ping -D).
    const replyAt = new Map<string, number[]>(others.map(n => [n.name, []]))
    for (const n of others) {
      const src = n.pods[0]
      if (src === undefined) throw new Error(`${n.name} has no pod`)
      procs.push(stream('ip', ['netns', 'exec', src.ns, 'ping', '-D', '-n', '-i', '0.01', '-W', '1', podIp], l => {
        const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(l)
        if (m !== null) replyAt.get(n.name)?.push(Number(m[1]) * 1000)
      }))
    }

    const routeLat: number[] = []; const pingLat: number[] = []; const goneLat: number[] = []; const missed: string[] = []
    for (let j = 0; j < JOINS; j++) {
      const deletesBefore = deletedAt.length
      // Leave: stop the daemon (its bridge and pod stay) and decommission it from etcd; every other
      // node drops the peer and route. (--leave would also delete the pod bridge, cutting the pod off.)
      await joiner.stop()
      await lab.ctl('node', 'remove', joiner.name)
      const gone = Date.now() + 10_000
      while (Date.now() < gone && (await Promise.all(others.map(async n => (await n.routes()).includes(subnet)))).some(x => x)) await sleep(50)
      await sleep(300) // let the last replies drain, so that the next reply is the new join's
      const tDel = deletedAt[deletesBefore]
      const gones = others.map(n => (routeGoneAt.get(n.name) ?? []).find(x => tDel !== undefined && x >= tDel))
      if (tDel !== undefined && gones.every(x => x !== undefined)) goneLat.push(Math.max(...(gones as number[])) - tDel)
      else { missed.push(`leave ${j}: ${tDel === undefined ? 'no delete seen' : 'routes not gone in 10 s'}`); process.stderr.write(`${missed.at(-1)}\n`) }
      const before = recordAt.length
      await joiner.start()
      const deadline = Date.now() + 15_000
      let t0: number | undefined
      while (Date.now() < deadline) {
        t0 = recordAt[before]
        if (t0 !== undefined && others.every(n => (routeAt.get(n.name) ?? []).some(x => x >= t0!) && (replyAt.get(n.name) ?? []).some(x => x >= t0!))) break
        await sleep(20)
      }
      if (t0 === undefined) { missed.push(`join ${j}: no record seen`); process.stderr.write(`${missed.at(-1)}\n`); continue }
      const firstAfter = (xs: number[] | undefined): number | undefined => xs?.find(x => x >= t0!)
      const r = others.map(n => firstAfter(routeAt.get(n.name)))
      const p = others.map(n => firstAfter(replyAt.get(n.name)))
      if (r.some(x => x === undefined) || p.some(x => x === undefined)) { missed.push(`join ${j}: not converged in 15 s`); process.stderr.write(`${missed.at(-1)}\n`); continue }
      routeLat.push(Math.max(...(r as number[])) - t0)
      pingLat.push(Math.max(...(p as number[])) - t0)
      process.stderr.write(`join ${j + 1}/${JOINS}: routes ${routeLat.at(-1)} ms, ping ${pingLat.at(-1)?.toFixed(0)} ms; leave before it: routes gone ${goneLat.at(-1) ?? '?'} ms\n`)
    }

    const fl = await floorWgRoute(lab, others[0] as LabNode)
    const watchOut = await nsExec(lab.hub, [process.execPath, `--import=${TS_LOADER}`, `${__dirname}/watch-floor.ts`, lab.etcdUrl])
    const watch = (JSON.parse(watchOut.trim().split('\n').pop() ?? '{}') as { samples: number[] }).samples
    const floor = percentile(watch, 50) + percentile(fl.wg, 50) + percentile(fl.route, 50)
    const rows: Row[] = [
      { metric: 'floor: etcd put→watch delivery (p50)', value: percentile(watch, 50), unit: 'ms' },
      { metric: 'floor: one wg set (p50, process)', value: percentile(fl.wg, 50), unit: 'ms' },
      { metric: 'floor: one ip route add (p50, process)', value: percentile(fl.route, 50), unit: 'ms' },
      { metric: 'floor: total', value: floor, unit: 'ms' },
      { metric: '(a) record→route on all nodes p50', value: percentile(routeLat, 50), unit: 'ms', floor },
      { metric: '(a) record→route on all nodes p99', value: percentile(routeLat, 99), unit: 'ms', floor, target: 100 },
      { metric: '(a) record→route on all nodes max', value: Math.max(...routeLat), unit: 'ms', floor },
      { metric: '(b) record→first ping from all p50', value: percentile(pingLat, 50), unit: 'ms', floor },
      { metric: '(b) record→first ping from all p99', value: percentile(pingLat, 99), unit: 'ms', floor, target: 1000 },
      { metric: '(b) record→first ping from all max', value: Math.max(...pingLat), unit: 'ms', floor },
      { metric: '(c) record delete→route gone on all p50', value: percentile(goneLat, 50), unit: 'ms', floor },
      { metric: '(c) record delete→route gone on all max', value: Math.max(...goneLat), unit: 'ms', floor },
      { metric: 'joins measured', value: routeLat.length, unit: 'joins', target: JOINS, targetKind: 'min', note: missed.join('; ') },
      { metric: 'leaves measured', value: goneLat.length, unit: 'leaves', target: JOINS, targetKind: 'min' }
    ]
    printReport('convergence', rows, { nodes: NODES, joins: JOINS, backend: 'wireguard (wireguard-go)', pingInterval: '10ms' })
  } finally {
    stopAll()
    await lab.destroy()
  }
}

main().then(() => process.exit(0), e => { process.stderr.write(`convergence: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })

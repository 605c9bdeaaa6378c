// Operating a 3-node netns lab: podmeshctl nodes/status/topology/diff show the truth, diff
// catches a route deleted by hand until the resync repairs it, /metrics and /readyz, and an etcd
// outage shows up as degraded (readyz stays 200 with "degraded": degraded-but-serving).
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { Lab, ROOT, nsExec, sleep, type LabNode, waitForValue } from './cluster'
import { createMetrics } from '../../lib/daemon/metrics'

const CTL = join(ROOT, 'dist', 'cmd', 'podmeshctl.js')

/** podmeshctl inside `ns` with its exit code (Lab.ctl throws on non-zero). */
async function ctlIn (lab: Lab, ns: string, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, CTL, '--etcd-endpoints', lab.etcdUrl, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

const diffArgs = (n: LabNode): string[] => ['diff', n.name, '--wg-interface', n.wgIf, '--vxlan-interface', `${n.wgIf}x`]

async function http (n: LabNode, path: string): Promise<{ code: number, body: string }> {
  const out = await nsExec(n.ns, ['curl', '-s', '-m', '2', '-w', '\n%{http_code}', `${n.metricsUrl}${path}`], { allowFail: true })
  const i = out.lastIndexOf('\n')
  return { code: Number(out.slice(i + 1)), body: out.slice(0, i) }
}

t.test('operate a 3-node lab', async t => {
  const lab = await Lab.create({ nodes: 3, podsPerNode: 1, backend: 'wireguard', resyncInterval: '4s' })
  t.teardown(async () => await lab.destroy())
  const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode]
  t.same(await lab.podMatrix(), [], 'pods reach each other (handshakes happen)')

  await t.test('nodes', async t => {
    const rows = JSON.parse(await lab.ctl('nodes', '-o', 'json')) as Array<{ name: string, endpoint: string, key: string, podCIDRs: string[], health: string }>
    t.same(rows.map(r => r.name), ['node-1', 'node-2', 'node-3'])
    const records = JSON.parse(await lab.etcdctl('get', '--print-value-only', '/podmesh/default/nodes/node-1')) as { podCIDRs: string[], publicKey: string }
    const r1 = rows[0]!
    t.equal(r1.endpoint, `${n1.underlayIp}:51820`)
    t.equal(r1.key, records.publicKey.slice(0, 8))
    t.same(r1.podCIDRs, records.podCIDRs)
    await waitForValue('all nodes healthy', 15_000, async () => {
      const rs = JSON.parse(await lab.ctl('nodes', '-o', 'json')) as Array<{ health: string }>
      return rs.every(r => r.health === 'ok')
    })
    t.match(await lab.ctl('nodes'), /NAME\s+SUBNETS\s+ENDPOINT/)
  })

  await t.test('status: every node sees every desired peer with a handshake', async t => {
    const rows = await waitForValue('converged status', 20_000, async () => {
      const rs = JSON.parse(await lab.ctl('status', '-o', 'json')) as Array<{ node: string, converged: boolean, version: string, peers: Array<{ peer: string, state: string, handshakeAgeSeconds?: number, rxBytes: number }> }>
      return rs.length === 3 && rs.every(r => r.converged) ? rs : undefined
    })
    for (const r of rows) {
      t.equal(r.peers.length, 2, `${r.node} has two peers`)
      t.ok(r.peers.every(p => p.state === 'ok' && (p.handshakeAgeSeconds ?? 999) < 180 && p.rxBytes > 0), `${r.node} peers ok`)
      t.match(r.version, /^\d+\.\d+\.\d+/)
    }
    const raw = JSON.parse(await lab.etcdctl('get', '--print-value-only', '/podmesh/default/status/node-2')) as Record<string, unknown>
    t.match(raw, { v: 1, node: 'node-2', degraded: false, ready: true, generation: Number, revision: String, updatedAt: String })
  })

  await t.test('topology', async t => {
    const dot = await lab.ctl('topology', '-o', 'dot')
    t.match(dot, /^graph podmesh \{/)
    for (const [a, b] of [['node-1', 'node-2'], ['node-1', 'node-3'], ['node-2', 'node-3']]) {
      t.match(dot, `"${a}" -- "${b}" [label="wireguard"]`)
    }
    const json = JSON.parse(await lab.ctl('topology', '-o', 'json')) as { nodes: unknown[], edges: Array<{ transport: string }> }
    t.equal(json.nodes.length, 3)
    t.equal(json.edges.length, 3)
    t.ok(json.edges.every(e => e.transport === 'wireguard'))
  })

  await t.test('diff: in sync, then a route deleted by hand, then repaired by the resync', async t => {
    const clean = await ctlIn(lab, n1.ns, [...diffArgs(n1), '-o', 'json'])
    t.equal(clean.code, 0, `in sync: ${clean.stdout}${clean.stderr}`)
    t.same((JSON.parse(clean.stdout) as { differences: string[] }).differences, [])
    const dst = (JSON.parse(await lab.etcdctl('get', '--print-value-only', '/podmesh/default/nodes/node-2')) as { podCIDRs: string[] }).podCIDRs[0]!
    // The daemon is paused while diff looks: its 4 s resync must not repair the route first.
    const pid = n1.daemon?.pid
    if (pid === undefined) throw new Error('node-1 has no daemon')
    process.kill(pid, 'SIGSTOP')
    let drift
    try {
      await nsExec(n1.ns, ['ip', 'route', 'del', dst, 'dev', n1.wgIf])
      drift = await ctlIn(lab, n1.ns, diffArgs(n1))
    } finally {
      process.kill(pid, 'SIGCONT')
    }
    t.equal(drift.code, 1, 'diff exits 1 on drift')
    t.match(drift.stdout, `node-1: route ${dst} dev ${n1.wgIf}`)
    t.match(drift.stdout, /: add$/m)
    await waitForValue('resync repairs the route', 12_000, async () => (await ctlIn(lab, n1.ns, diffArgs(n1))).code === 0).catch(() => undefined)
    const repaired = await ctlIn(lab, n1.ns, diffArgs(n1))
    t.equal(repaired.code, 0, 'diff exits 0 after the resync', { stdout: repaired.stdout })
    t.match(await n1.routes(), `${dst} dev ${n1.wgIf}`, 'the route is back')
  })

  await t.test('/metrics and /readyz', async t => {
    const m = await http(n2, '/metrics')
    t.equal(m.code, 200)
    const names = (await createMetrics().registry.getMetricsAsJSON()).map(x => x.name).filter(n => !n.startsWith('podmesh_process_'))
    t.ok(names.length >= 10)
    for (const name of names) t.match(m.body, new RegExp(`^# HELP ${name} `, 'm'), `exposes ${name}`)
    t.match(m.body, /^podmesh_ready 1$/m)
    const r = await http(n2, '/readyz')
    t.equal(r.code, 200)
    t.match(r.body, /^ready: /)
    t.equal((await http(n2, '/healthz')).code, 200)
  })

  await t.test('etcd down: degraded but serving, visible in status once etcd is back', async t => {
    await lab.stopEtcd()
    const r = await waitForValue('readyz degraded', 15_000, async () => { const x = await http(n3, '/readyz'); return x.body.includes('degraded') ? x : undefined })
    t.equal(r.code, 200, 'degraded-but-serving stays ready')
    const failed = await ctlIn(lab, lab.hub, ['status'])
    t.not(failed.code, 0, 'status cannot read etcd while it is down')
    await sleep(2000)
    await lab.startEtcd()
    const row = await waitForValue('status records the degraded period', 30_000, async () => {
      const rs = JSON.parse(await lab.ctl('status', 'node-3', '-o', 'json')) as Array<{ node: string, health: string, degraded?: boolean, lastDegraded?: { since: string, until?: string } }>
      const x = rs[0]
      return x !== undefined && (x.degraded === true || x.health !== 'ok' || x.lastDegraded !== undefined) ? x : undefined
    })
    t.equal(row.node, 'node-3')
    t.ok(row.degraded === true || row.health !== 'ok' || row.lastDegraded !== undefined, `degraded shown: ${JSON.stringify(row)}`)
    const back = await waitForValue('recovered', 30_000, async () => {
      const x = (JSON.parse(await lab.ctl('status', 'node-3', '-o', 'json')) as Array<{ health: string, lastDegraded?: { since: string, until?: string } }>)[0]
      return x?.health === 'ok' && x.lastDegraded?.until !== undefined ? x : undefined
    })
    t.ok(Date.parse(back.lastDegraded!.until!) >= Date.parse(back.lastDegraded!.since), 'degraded period recorded')
    const text = await lab.ctl('status', 'node-3')
    t.match(text, /node-3: etcd unreachable since .* until /)
    const ready = await http(n3, '/readyz')
    t.equal(ready.code, 200)
    t.notMatch(ready.body, 'degraded')
    t.equal((await ctlIn(lab, n3.ns, diffArgs(n3))).code, 0, 'no drift after the outage')
  })
})

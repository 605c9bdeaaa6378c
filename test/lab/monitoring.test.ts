// monitoring/ against live daemons: a running podmeshd's /metrics is valid exposition (promtool
// check metrics) and declares every metric the rules and the dashboard use, with values that
// match the kernel; and a real Prometheus, scraping the lab's daemons, evaluates the rules without
// errors and fires each alert the lab can cause (reconcile errors, degraded, down) for the node
// that has the fault and not for the other. There the rules' `for:` is 0s: the durations are
// proved by the promtool unit tests (test/monitoring/rules.test.ts), the expressions here.
import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Lab, nsExec, waitForValue, type LabNode } from './cluster'
import { RULES, dashboardQueries, exposedNames, metricNames, promtool, readDashboard, ruleFile } from '../monitoring/monitoring-files'

t.setTimeout(8 * 60_000)
let lab: Lab
t.before(async () => { lab = await Lab.create({ nodes: 2, podsPerNode: 0, backend: 'wireguard' }) })
t.teardown(async () => { await lab?.destroy() })

const scrape = async (n: LabNode): Promise<string> => await nsExec(n.ns, ['curl', '-sf', '-m', '5', `${n.metricsUrl}/metrics`])

/** The value of one sample (`name{labels}` exactly as exposed, labels in prom-client's order). */
function value (text: string, series: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('a live daemon exposes valid metrics, every one the rules and the dashboard use', async t => {
  const [a, b] = lab.nodes as [LabNode, LabNode]
  // A ping through the tunnel makes sure of a handshake; the gauge then reads it from the kernel.
  const bTunnel = (await b.tunnelAddresses()).find(ip => !ip.includes(':'))
  t.ok(bTunnel, `${b.name} has a tunnel address`)
  await waitForValue(`${a.name} pings ${b.name} through the tunnel`, 30_000, async () => await lab.ping(a.ns, bTunnel!))
  const text = await waitForValue(`${a.name} reports a handshake with ${b.name}`, 60_000, async () => {
    const s = await scrape(a)
    const age = value(s, `podmesh_peer_handshake_age_seconds{peer="${b.name}"}`)
    return age !== undefined && age >= 0 ? s : undefined
  })

  // Parse errors exit 1; lint findings exit 3. prom-client's default Node.js gauges named *_total
  // are the only findings allowed: none may name one of podmesh's own metrics.
  const check = await promtool(['check', 'metrics'], text)
  t.ok(check.code === 0 || check.code === 3, `promtool check metrics parses it (exit ${check.code ?? 'signal'}): ${check.out}`)
  const findings = check.out.split('\n').filter(l => l.trim() !== '')
  for (const f of findings) t.match(f, /^podmesh_process_nodejs_\w+ /, `only prom-client's own metrics have lint findings: ${f}`)
  const broken = await promtool(['check', 'metrics'], text.replace('podmesh_ready ', 'podmesh_ready{ '))
  t.equal(broken.code, 1, 'a broken exposition is refused')

  const exposed = exposedNames(text)
  const used = new Set([
    ...ruleFile(readFileSync(RULES, 'utf8')).exprs.flatMap(metricNames),
    ...dashboardQueries(readDashboard()).flatMap(q => metricNames(q.promql))
  ])
  t.ok(used.size >= 20, `${used.size} metric names used`)
  for (const n of used) t.ok(exposed.has(n), `${n} is in the live scrape`)

  t.equal(value(text, 'podmesh_ready'), 1)
  t.equal(value(text, 'podmesh_degraded'), 0)
  t.equal(value(text, 'podmesh_registration_held'), 1)
  t.equal(value(text, 'podmesh_peers{transport="wireguard"}'), 1)
  const link = JSON.parse(await nsExec(a.ns, ['ip', '-j', 'link', 'show', 'dev', a.wgIf])) as Array<{ mtu: number }>
  t.equal(value(text, 'podmesh_mtu_bytes{kind="wireguard"}'), link[0]?.mtu, 'the WireGuard MTU gauge is the device\'s MTU in the kernel')
  t.equal(value(text, 'podmesh_mtu_bytes{kind="vxlan"}'), undefined, 'no VXLAN device in a WireGuard cluster: no series')
  t.equal(value(text, 'podmesh_narrow_paths'), 0)
})

t.test('a real Prometheus fires each alert the lab can cause, for the node at fault', async t => {
  const [a, b] = lab.nodes as [LabNode, LabNode]
  const target = (n: LabNode): string => `${n.underlayIp}:9475`
  const dir = join(lab.dir, 'prometheus')
  mkdirSync(dir)
  const rulesText = readFileSync(RULES, 'utf8')
  const alertCount = ruleFile(rulesText).alerts.length
  const immediate = rulesText.replace(/^(\s+)for: \d+[smh]$/gm, '$1for: 0s')
  t.equal([...immediate.matchAll(/for: 0s$/gm)].length, alertCount, 'every alert\'s for: set to 0s')
  writeFileSync(join(dir, 'rules.yml'), immediate)
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global: { scrape_interval: 1s, evaluation_interval: 1s }',
    'rule_files: [rules.yml]',
    'scrape_configs:',
    '  - job_name: podmesh',
    `    static_configs: [{ targets: ['${target(a)}', '${target(b)}'] }]`,
    ''
  ].join('\n'))
  // In the hub namespace: its loopback is the lab's own, and it reaches every node's underlay.
  const log = openSync(join(dir, 'prometheus.log'), 'a')
  const prom = spawn('ip', ['netns', 'exec', lab.hub, 'prometheus', `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:9090', '--log.level=warn'], { stdio: ['ignore', log, log] })
  closeSync(log)
  lab.track(prom)
  prom.on('error', () => {})
  t.teardown(() => { if (prom.exitCode === null && prom.signalCode === null) prom.kill('SIGTERM') })
  const api = async (path: string): Promise<unknown> => {
    if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}: ${readFileSync(join(dir, 'prometheus.log'), 'utf8').slice(-2000)}`)
    const out = await nsExec(lab.hub, ['curl', '-sf', '-m', '5', `http://127.0.0.1:9090${path}`])
    return (JSON.parse(out) as { data: unknown }).data
  }
  const firing = async (): Promise<string[]> => {
    const d = await api('/api/v1/alerts') as { alerts: Array<{ labels: Record<string, string>, state: string }> }
    return d.alerts.filter(x => x.state === 'firing').map(x => `${x.labels.alertname ?? '?'} ${x.labels.instance ?? '?'}`).sort()
  }
  const waitFiring = async (alert: string, n: LabNode, timeoutMs: number): Promise<string[]> =>
    await waitForValue(`${alert} firing for ${n.name}`, timeoutMs, async () => { const f = await firing(); return f.includes(`${alert} ${target(n)}`) ? f : undefined }, { everyMs: 500 })

  // Both targets scraped and every rule evaluated once.
  await waitForValue('prometheus scrapes both nodes', 60_000, async () => {
    const d = await api('/api/v1/query?query=up') as { result: Array<{ value: [number, string] }> }
    return d.result.length === 2 && d.result.every(r => r.value[1] === '1')
  }, { everyMs: 500 })
  const groups = await waitForValue('every rule evaluated', 30_000, async () => {
    const d = await api('/api/v1/rules') as { groups: Array<{ rules: Array<{ name: string, health: string, lastError?: string }> }> }
    const rules = d.groups.flatMap(g => g.rules)
    return rules.length > alertCount && rules.every(r => r.health !== 'unknown') ? rules : undefined
  }, { everyMs: 500 })
  for (const r of groups) t.equal(r.health, 'ok', `${r.name} evaluates on live data${r.lastError !== undefined && r.lastError !== '' ? `: ${r.lastError}` : ''}`)

  // Healthy: none of the alerts the lab causes below fires yet. (Convergence lag depends on the
  // machine's load, handshakes on timing: not asserted here.)
  const healthy = await firing()
  for (const x of ['PodmeshDown', 'PodmeshDegraded', 'PodmeshReconcileErrors', 'PodmeshRegistrationLost', 'PodmeshConflictingRecords', 'PodmeshConfigStale']) {
    t.notOk(healthy.some(f => f.startsWith(`${x} `)), `${x} silent on the healthy lab (firing: ${healthy.join(', ') || 'none'})`)
  }

  // Reconcile errors: someone else's route to b's pod subnet on a; podmesh leaves it and fails.
  const bCidr = (JSON.parse((await lab.etcdctl('get', '--print-value-only', `/podmesh/default/nodes/${b.name}`)).trim()) as { podCIDRs: string[] }).podCIDRs[0]!
  await nsExec(a.ns, ['ip', 'route', 'del', bCidr])
  await nsExec(a.ns, ['ip', 'route', 'add', bCidr, 'via', '192.0.2.1'])
  try {
    const f = await waitFiring('PodmeshReconcileErrors', a, 60_000)
    t.notOk(f.includes(`PodmeshReconcileErrors ${target(b)}`), `not for ${b.name}`)
  } finally {
    await nsExec(a.ns, ['ip', 'route', 'del', bCidr, 'via', '192.0.2.1'], { allowFail: true })
  }
  await a.waitReady(30_000)

  // Degraded: etcd stops; both nodes keep serving and say so.
  await lab.stopEtcd()
  try {
    await waitFiring('PodmeshDegraded', a, 90_000)
    await waitFiring('PodmeshDegraded', b, 30_000)
  } finally {
    await lab.startEtcd()
  }
  const back = await waitForValue('degraded resolved on both nodes', 90_000, async () => {
    const f = await firing(); return f.some(x => x.startsWith('PodmeshDegraded ')) ? undefined : f
  }, { everyMs: 500 })
  t.notOk(back.some(x => x.startsWith('PodmeshDegraded ')), 'PodmeshDegraded resolves when etcd is back')

  // Down: b's daemon stops (its tunnels stay); only b's target is down.
  await b.stop()
  const f = await waitFiring('PodmeshDown', b, 60_000)
  t.notOk(f.includes(`PodmeshDown ${target(a)}`), `not for ${a.name}`)
})

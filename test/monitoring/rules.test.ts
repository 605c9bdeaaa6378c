// The Prometheus rules and the Grafana dashboard in monitoring/: promtool accepts them, each
// alert is proved by its promtool unit test, and every metric they name is one podmeshd's
// registry exports. Each check is shown to fail on a broken copy.
// (Against live daemons and a real Prometheus: test/lab/monitoring.test.ts.)
import t from 'tap'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { REPO_ROOT } from '../harness/netns'
import { createMetrics } from '../../lib/daemon/metrics'
import { DASHBOARD, RULES, RULE_TESTS, dashboardQueries, exposedNames, metricNames, promtool, readDashboard, ruleFile } from './monitoring-files'

const rulesText = readFileSync(RULES, 'utf8')
const rules = ruleFile(rulesText)
const tmp = mkdtempSync(join(tmpdir(), 'podmesh-rules-'))
t.teardown(() => rmSync(tmp, { recursive: true, force: true }))

/** A copy of the rules and their tests in the temp dir, the rules edited by `edit`. */
function brokenCopy (name: string, edit: (rules: string) => string): { rules: string, tests: string } {
  const dir = mkdtempSync(join(tmp, `${name}-`))
  const edited = edit(rulesText)
  if (edited === rulesText) throw new Error(`the edit "${name}" changed nothing`)
  writeFileSync(join(dir, basename(RULES)), edited)
  copyFileSync(RULE_TESTS, join(dir, basename(RULE_TESTS)))
  return { rules: join(dir, basename(RULES)), tests: join(dir, basename(RULE_TESTS)) }
}

t.test('promtool check rules accepts every rule', async t => {
  const r = await promtool(['check', 'rules', RULES])
  t.equal(r.code, 0, r.out)
  const found = r.out.match(/SUCCESS: (\d+) rules found/)
  t.ok(found, r.out)
  t.equal(Number(found?.[1]), rules.exprs.length, 'promtool counts as many rules as this test reads expressions')
  t.ok(rules.alerts.length >= 5 && rules.records.length >= 1, `${rules.alerts.length} alerts, ${rules.records.length} recording rules`)

  const broken = brokenCopy('syntax', s => s.replace('expr: podmesh_degraded == 1', 'expr: podmesh_degraded == == 1'))
  const b = await promtool(['check', 'rules', broken.rules])
  t.not(b.code, 0, 'a rule that does not parse is refused')
  t.match(b.out, /podmesh_degraded == == 1|parse error/)
})

t.test('promtool test rules: each alert fires on its condition, not on a healthy node', async t => {
  const r = await promtool(['test', 'rules', RULE_TESTS])
  t.equal(r.code, 0, r.out)
  t.match(r.out, /SUCCESS/)
  const tests = readFileSync(RULE_TESTS, 'utf8')
  for (const a of rules.alerts) t.match(tests, new RegExp(`alertname: ${a}\\n\\s+exp_alerts:\\n\\s+- exp_labels`), `${a} has a test that expects it to fire`)

  // The same tests against rules that no longer detect what they name must fail, naming the alert.
  const mutants: Array<[string, string, (s: string) => string]> = [
    ['degraded', 'PodmeshDegraded', s => s.replace('podmesh_degraded == 1', 'podmesh_degraded == 2')],
    ['never-handshaken', 'PodmeshPeerHandshakeStale', s => s.replace(' or podmesh_peer_handshake_age_seconds == -1', '')],
    ['registration-instant', 'PodmeshRegistrationLost', s => s.replace(/(alert: PodmeshRegistrationLost\n(?:.*\n){2}\s+for: )1m/, '$10m')]
  ]
  for (const [name, alert, edit] of mutants) {
    const m = brokenCopy(name, edit)
    const b = await promtool(['test', 'rules', m.tests])
    t.not(b.code, 0, `${name}: the unit tests catch it`)
    t.match(b.out, new RegExp(`alertname: ${alert}`), `${name}: the failure names ${alert}`)
  }
})

t.test('every alert has for:, a severity and a runbook section that exists', async t => {
  const blocks = rulesText.split(/\n(?=[ ]+- alert: )/).slice(1)
  t.equal(blocks.length, rules.alerts.length)
  const operations = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8')
  // GitHub's anchors: lower case, punctuation dropped, spaces to dashes.
  const anchors = new Set([...operations.matchAll(/^#+ (.+)$/gm)].map(m => m[1]!.toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-')))
  for (const b of blocks) {
    const name = b.match(/- alert: (\w+)/)?.[1] ?? '?'
    t.match(b, /\n\s+for: \d+[smh]\n/, `${name}: for`)
    t.match(b, /\n\s+severity: (critical|warning|info)\n/, `${name}: severity`)
    t.match(b, /\n\s+summary: .*\{\{ \$labels\.instance \}\}/, `${name}: summary names the node`)
    const runbook = b.match(/\n\s+runbook: docs\/operations\.md#([\w-]+)\n/)?.[1]
    t.ok(runbook !== undefined && anchors.has(runbook), `${name}: runbook #${runbook ?? '(none)'} is a section of docs/operations.md`)
  }
})

t.test('rules and dashboard name only metrics podmeshd exports', async t => {
  const exported = exposedNames(await createMetrics().registry.metrics())
  t.ok(exported.has('podmesh_reconcile_total') && exported.has('podmesh_convergence_lag_seconds_bucket'), 'the registry is read')
  const queries = [
    ...rules.exprs.map(e => ({ where: 'rules', promql: e })),
    ...dashboardQueries(readDashboard())
  ]
  for (const q of queries) {
    for (const n of metricNames(q.promql)) t.ok(exported.has(n), `${q.where}: ${n} is exported`)
  }
  // Recording rules used by alerts are defined; the one expression without a podmesh metric is
  // Prometheus's own up for the podmesh job.
  for (const e of rules.exprs) for (const r of e.match(/\w+:podmesh_\w+:\w+/g) ?? []) t.ok(rules.records.includes(r), `${r} is recorded`)
  t.strictSame(rules.exprs.filter(e => metricNames(e).length === 0 && !/\w+:podmesh_\w+:\w+/.test(e)), ['up{job="podmesh"} == 0'])
  // The check itself can fail: a name that podmeshd does not export is not in the set.
  t.notOk(exported.has(metricNames('rate(podmesh_reconcile_errors_total[5m])')[0]!), 'an unknown metric is caught')
})

t.test('the dashboard: datasource and node variables, and every query parses', async t => {
  const d = readDashboard()
  const vars = d.templating.list.map(v => v.name)
  t.ok(vars.includes('datasource') && vars.includes('instance'), `variables: ${vars.join(', ')}`)
  const raw = readFileSync(DASHBOARD, 'utf8')
  t.notMatch(raw, /"uid": "(?!\$\{datasource\}|podmesh")/, 'no datasource uid but the variable')
  const queries = dashboardQueries(d)
  t.ok(queries.length >= 20, `${queries.length} queries`)
  for (const q of queries.filter(q => q.where.startsWith('panel'))) t.match(q.promql, /instance=~"\.\*"/, `${q.where}: filtered by $instance`)

  // promtool parses PromQL in rules files: every query becomes a recording rule.
  const asRules = (qs: Array<{ promql: string }>): string => 'groups:\n  - name: dashboard\n    rules:\n' +
    qs.map((q, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(q.promql)}\n`).join('')
  const file = join(tmp, 'dashboard-queries.yml')
  writeFileSync(file, asRules(queries))
  const r = await promtool(['check', 'rules', file])
  t.equal(r.code, 0, r.out)
  t.match(r.out, new RegExp(`SUCCESS: ${queries.length} rules found`))

  const broken = join(tmp, 'dashboard-broken.yml')
  writeFileSync(broken, asRules([...queries, { promql: 'sum by (instance (podmesh_ready)' }]))
  const b = await promtool(['check', 'rules', broken])
  t.not(b.code, 0, 'a query that does not parse is refused')
})

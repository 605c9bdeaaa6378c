// What the monitoring tests read from monitoring/: the rules' and the dashboard's PromQL, the
// metric names they use, the names an exposition declares, and promtool run on them.

import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../harness/netns'

export const RULES = join(REPO_ROOT, 'monitoring', 'prometheus', 'podmesh-alerts.yml')
export const RULE_TESTS = join(REPO_ROOT, 'monitoring', 'prometheus', 'podmesh-alerts.test.yml')
export const DASHBOARD = join(REPO_ROOT, 'monitoring', 'grafana', 'podmesh.json')

export interface Run { code: number | null, out: string }

/** promtool with its exit code and both streams (a failing run is an answer here, not an error). */
export async function promtool (args: readonly string[], input?: string): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = execFile('promtool', [...args], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      if (err !== null && typeof (err as { code?: unknown }).code !== 'number') { reject(new Error(`promtool ${args.join(' ')}: ${err.message}`, { cause: err })); return }
      resolve({ code: err === null ? 0 : (err as { code: number }).code, out: stdout + stderr })
    })
    child.stdin?.on('error', () => {})
    child.stdin?.end(input ?? '')
  })
}

/** The rules file's expressions and recording-rule names (each `expr:` is one line in that file). */
export function ruleFile (text: string): { exprs: string[], records: string[], alerts: string[] } {
  const field = (name: string): string[] => [...text.matchAll(new RegExp(`^\\s+(?:- )?${name}: (.+)$`, 'gm'))].map(m => m[1]!.trim())
  return { exprs: field('expr'), records: field('record'), alerts: field('alert') }
}

interface Target { expr?: string }
interface Panel { title?: string, targets?: Target[], panels?: Panel[] }
interface Variable { name: string, query?: string | { query?: string } }
export interface Dashboard { panels: Panel[], templating: { list: Variable[] } }

export const readDashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard

/**
 * Every query the dashboard sends, as plain PromQL: panel targets with Grafana's variables
 * given values, and the query variables' `label_values(metric, label)` as the metric.
 */
export function dashboardQueries (d: Dashboard): Array<{ where: string, promql: string }> {
  const out: Array<{ where: string, promql: string }> = []
  const walk = (ps: Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr !== undefined) out.push({ where: `panel "${p.title ?? '?'}"`, promql: grafanaToPromql(t.expr) })
      walk(p.panels ?? [])
    }
  }
  walk(d.panels)
  for (const v of d.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query
    const m = q?.match(/^label_values\((.+),\s*\w+\)$/)
    if (m !== null && m !== undefined) out.push({ where: `variable $${v.name}`, promql: m[1]! })
  }
  return out
}

/** Grafana's variables as Prometheus would see them with "All" selected. */
export const grafanaToPromql = (expr: string): string => expr
  .replace(/\$\{?instance\}?/g, '.*')
  .replace(/\$\{?__rate_interval\}?/g, '5m')

/** The podmesh_* metric names an expression reads; recording-rule names (with colons) are not metrics. */
export const metricNames = (promql: string): string[] => [...new Set([...promql.matchAll(/(?<![\w:])podmesh_[a-z0-9_]+(?![\w:])/g)].map(m => m[0]))]

/** Sample names an exposition declares (`# TYPE`), a histogram's _bucket/_sum/_count included. */
export function exposedNames (text: string): Set<string> {
  const names = new Set<string>()
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string]
    names.add(name)
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s)
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s)
  }
  return names
}

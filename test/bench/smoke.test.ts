// Every benchmark (a `bench:<name>` script in package.json) runs once at its smoke size, as
// `scripts/bench <name> --smoke --json` from a directory outside the checkout, so that none can
// rot: each must exit 0 and print its figures — a JSON report under its own name, marked smoke,
// with rows of numbers. The figures are printed here as comments and never judged: how fast
// podmesh is belongs to the benchmarks, not to pass/fail. BENCH_SMOKE_ONLY=services,scale runs
// only those (while working on one benchmark); the list check still covers them all.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT } from '../harness/compile'

// Plain JavaScript shared with scripts/bench-smoke (the one list of benchmarks).
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { benchNames } = require(join(ROOT, 'bench', 'names.js')) as { benchNames: () => string[] }

interface Report {
  bench: string
  context: Record<string, unknown>
  rows: Array<{ metric: string, value: number | null, unit: string }>
}

interface Outcome { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, seconds: number }

/** Runs one benchmark's smoke size; its output is read at 'close', when the pipes are drained. */
async function runSmoke (t: Test, name: string): Promise<Outcome> {
  const t0 = Date.now()
  const child = spawn(join(ROOT, 'scripts', 'bench'), [name, '--smoke', '--json'], { cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] })
  // A benchmark that hangs is stopped when the test ends; its own SIGTERM handler cleans up.
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM') })
  let stdout = ''; let stderr = ''
  child.stdout.on('data', d => { stdout += String(d) })
  child.stderr.on('data', d => { stderr += String(d) })
  return await new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr, seconds: (Date.now() - t0) / 1000 }))
  })
}

const names = benchNames()
const only = (process.env.BENCH_SMOKE_ONLY ?? '').split(',').filter(n => n !== '')
const unknown = only.filter(n => !names.includes(n))
if (unknown.length > 0) throw new Error(`BENCH_SMOKE_ONLY names no benchmark: ${unknown.join(', ')} (known: ${names.join(', ')})`)
const selected = only.length > 0 ? only : names
const total = Date.now()

t.before(async () => {
  // scripts/test builds dist/ (scripts/install-deps); a lone run of this file may not have.
  if (!existsSync(join(ROOT, 'dist', 'cmd', 'podmeshd.js'))) {
    const build = spawn('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: 'inherit' })
    const code = await new Promise(resolve => build.once('close', resolve))
    if (code !== 0) throw new Error(`npm run build exited with ${String(code)}`)
  }
})

t.test('package.json names the benchmarks, each with its bench/<name>.ts', async t => {
  t.ok(names.length >= 8, `${names.length} benchmarks: ${names.join(', ')}`)
  for (const n of names) t.ok(existsSync(join(ROOT, 'bench', `${n}.ts`)), `bench/${n}.ts exists`)
})

for (const name of selected) {
  t.test(`bench:${name} --smoke`, async t => {
    const r = await runSmoke(t, name)
    t.comment(`bench:${name} --smoke: exit ${String(r.code ?? r.signal)} in ${r.seconds.toFixed(1)} s`)
    t.equal(r.code, 0, `bench:${name} exits 0`, { stderr: r.stderr.slice(-3000) })
    let report: Report | undefined
    try { report = JSON.parse(r.stdout) as Report } catch (e) {
      t.fail(`bench:${name} printed one JSON report on stdout: ${(e as Error).message}`, { stdout: r.stdout.slice(-2000), stderr: r.stderr.slice(-2000) })
      return
    }
    t.equal(report.bench, name, 'the report names the benchmark')
    t.equal(report.context.smoke, true, 'the report says it is a smoke run')
    t.ok(Array.isArray(report.rows) && report.rows.length > 0, `${report.rows?.length ?? 0} figures printed`)
    const measured = report.rows.filter(row => typeof row.value === 'number' && Number.isFinite(row.value))
    t.ok(measured.length > 0, `${measured.length} of ${report.rows.length} figures are numbers`)
    for (const row of report.rows) t.comment(`  ${row.metric}: ${String(row.value)} ${row.unit}`)
  })
}

t.after(() => { t.comment(`smoke: ${selected.length} benchmarks in ${((Date.now() - total) / 1000).toFixed(0)} s`) })

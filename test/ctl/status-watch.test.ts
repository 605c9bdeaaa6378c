// `podmeshctl status -w` as an operator runs it: a child process watching a real etcd. A node
// that joins and a status that changes must show as a new table; SIGINT and SIGTERM end it with
// exit 0; etcd going away ends it with exit 1 and one line on stderr.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import type { StoreClient } from '../../lib/store/client'
import { startEtcd } from '../harness/etcd'
import { compileEntry } from '../harness/compile'
import { runCli } from '../harness/ctl'
import { fields, tempDir, testClient } from '../harness/store'
import { waitFor } from '../harness/wait'

const PREFIX = '/podmesh/default/'
let cli = ''

t.before(async () => { cli = await compileEntry(t, 'cmd/podmeshctl.ts') })

/** A running `podmeshctl status -w …`: its output so far, and its end (read at 'close'). */
interface Watch { proc: ChildProcess, out: () => string, err: () => string, ended: Promise<{ code: number | null, signal: NodeJS.Signals | null }> }

function watch (t: Test, args: string[]): Watch {
  const proc = spawn(process.execPath, [cli, 'status', '-w', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout?.on('data', d => { out += String(d) })
  proc.stderr?.on('data', d => { err += String(d) })
  const ended = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
    proc.on('error', reject)
    proc.on('close', (code, signal) => resolve({ code, signal }))
  })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  return { proc, out: () => out, err: () => err, ended }
}

/** A status value as podmeshd writes it, fresh. */
const statusValue = (node: string, o: { degraded?: boolean, ready?: boolean } = {}): string => JSON.stringify({
  v: 1, node, version: '0.1.0', generation: 0, revision: '1', degraded: o.degraded ?? false, ready: o.ready ?? true,
  updatedAt: new Date().toISOString(), peers: []
})

async function cluster (t: Test): Promise<{ E: string[], client: StoreClient, etcd: Awaited<ReturnType<typeof startEtcd>>, join: (i: number) => Promise<void> }> {
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  const init = await runCli(cli, ['init', '--ipv4-cidr', '10.244.0.0/16', '--backend', 'vxlan', ...E])
  t.equal(init.code, 0, init.stderr)
  const client = await testClient(t, etcd.endpoints)
  const config = parseNetworkConfig(JSON.parse((await runCli(cli, ['config', 'show', '-o', 'json', ...E])).stdout))
  const join = async (i: number): Promise<void> => {
    const h = await acquireNode({ client, prefix: PREFIX, config, name: `node-${i}`, stateDir: await tempDir(t), record: { ...fields(i), publicKey: undefined, vxlan: { mac: `02:00:00:00:00:0${i}` } } })
    t.teardown(async () => await h.close())
  }
  return { E, client, etcd, join }
}

/** The tables printed so far (not a terminal: each one after its "# etcd revision" line). */
const tables = (out: string): string[] => out.split(/^# etcd revision \d+ at \S+\n/m).slice(1)

t.test('status -w shows a new table when a node joins and when a status changes; SIGINT ends it with 0', async t => {
  const { E, client, join } = await cluster(t)
  await join(1)
  await client.put(`${PREFIX}status/node-1`).value(statusValue('node-1'))
  const w = watch(t, E)
  await waitFor('the first table', 20_000, async () => tables(w.out()).length >= 1)
  const first = tables(w.out())[0] ?? ''
  t.match(first, /^NODE\s+HEALTH\s+CONFIG\s+PEER/, 'the table as status prints it')
  t.match(first, /^node-1\s+ok\s/m)
  t.notMatch(first, /node-2/)

  await join(2)
  await waitFor('a table with node-2', 20_000, async () => /^node-2\s/m.test(tables(w.out()).at(-1) ?? ''))
  const joined = tables(w.out()).at(-1) ?? ''
  t.match(joined, /^node-1\s+ok\s+\S+\s+node-2\s+vxlan\s/m, 'node-1 now has node-2 as a peer')
  t.match(joined, /^node-2\s+NO-STATUS\s/m, 'node-2 has no status yet')

  await client.put(`${PREFIX}status/node-1`).value(statusValue('node-1', { degraded: true }))
  await waitFor('node-1 degraded', 20_000, async () => /^node-1\s+DEGRADED\s/m.test(tables(w.out()).at(-1) ?? ''))
  const n = tables(w.out()).length
  t.ok(n >= 3, `one table per change at least (${n})`)
  t.equal(w.proc.exitCode, null, 'still watching')

  w.proc.kill('SIGINT')
  const end = await w.ended
  t.strictSame(end, { code: 0, signal: null }, 'SIGINT: exit 0')
  t.equal(w.err(), '', 'nothing on stderr')
})

t.test('status -w -o json: one JSON object per change; SIGTERM ends it with 0', async t => {
  const { E, client, join } = await cluster(t)
  await join(1)
  const w = watch(t, [...E, '-o', 'json', 'node-1'])
  const lines = (): Array<{ revision: string, rows: Array<{ node: string, health: string }> }> =>
    w.out().split('\n').filter(l => l !== '').map(l => JSON.parse(l))
  await waitFor('the first line', 20_000, async () => lines().length >= 1)
  t.strictSame(lines()[0]?.rows.map(r => [r.node, r.health]), [['node-1', 'no-status']])
  await client.put(`${PREFIX}status/node-1`).value(statusValue('node-1', { ready: false }))
  await waitFor('node-1 not ready', 20_000, async () => lines().at(-1)?.rows[0]?.health === 'not-ready')
  const revs = lines().map(l => BigInt(l.revision))
  t.ok(revs.every((r, i) => i === 0 || r > (revs[i - 1] ?? 0n)), `revisions grow: ${revs.join(', ')}`)
  await join(2)
  // Only node-1 is asked for: node-2's join changes node-1's peers, never adds a node-2 row.
  await waitFor('node-1 sees node-2 as a peer', 20_000, async () => w.out().includes('"peer":"node-2"'))
  t.ok(lines().every(l => l.rows.every(r => r.node === 'node-1')), 'rows of node-1 only')
  w.proc.kill('SIGTERM')
  t.strictSame(await w.ended, { code: 0, signal: null }, 'SIGTERM: exit 0')
})

t.test('status -w when etcd goes away: exit 1 with one line', async t => {
  const { E, etcd, join } = await cluster(t)
  await join(1)
  const w = watch(t, E)
  await waitFor('the first table', 20_000, async () => tables(w.out()).length >= 1)
  await etcd.stop()
  const end = await w.ended
  t.equal(end.code, 1, 'exit 1')
  t.match(w.err(), /^podmeshctl: etcd watch \/podmesh\/default\/: [^\n]+\n$/, `one line: ${w.err()}`)
  t.notMatch(w.err(), /\n\s+at /, 'no stack trace')
})

t.test('status -w of an unknown node: one line, exit 1, before any table', async t => {
  const { E } = await cluster(t)
  const w = watch(t, [...E, 'nosuch'])
  const end = await w.ended
  t.equal(end.code, 1)
  t.equal(w.err(), 'podmeshctl: no node named "nosuch" in cluster "default"\n')
  t.equal(w.out(), '')
})

t.test('the help names the watch flag', async t => {
  const help = await runCli(cli, ['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /^ {2}podmeshctl status \[node\] \[-w\] .*\n {4}-w, --watch +keep watching etcd/m)
  const other = await runCli(cli, ['nodes', '-w', '--etcd-endpoints', 'http://127.0.0.1:1'])
  t.equal(other.code, 2, 'only status watches')
  t.match(other.stderr, /Unknown option '-w'/)
})

t.test('on a terminal, status -w clears the screen and redraws; Ctrl-C ends it with 0', async t => {
  const { E, join } = await cluster(t)
  await join(1)
  // util-linux `script` (Debian's essential bsdutils) gives the CLI a real pseudo-terminal; a
  // Ctrl-C written to it reaches the CLI as SIGINT through the terminal, as when typed.
  const proc = spawn('script', ['-qfec', `exec '${process.execPath}' '${cli}' status -w ${E.join(' ')}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', d => { out += String(d) })
  proc.stderr.on('data', d => { out += String(d) })
  const ended = new Promise<number | null>((resolve, reject) => { proc.on('error', reject); proc.on('close', code => resolve(code)) })
  t.teardown(() => { if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL') })
  const CLEAR = '\x1b[H\x1b[2J'
  const frames = (): string[] => out.split(CLEAR).slice(1)
  await waitFor('the first screen', 20_000, async () => /^node-1\s/m.test(frames()[0] ?? ''))
  await join(2)
  await waitFor('a screen with node-2', 20_000, async () => /^node-2\s/m.test(frames().at(-1) ?? ''))
  t.ok(frames().length >= 2, `the screen was cleared for each table (${frames().length})`)
  t.equal(out.split('# etcd revision').length - 1, frames().length, 'every table on a cleared screen, none appended')
  t.notMatch(frames()[0], /node-2/, 'the first screen is from before node-2 joined')
  proc.stdin.write('\x03')
  t.equal(await ended, 0, 'Ctrl-C: exit 0')
})

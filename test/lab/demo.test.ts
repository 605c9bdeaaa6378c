// The README's demo as a new user runs it: `scripts/lab up` (lab, wait, matrix; the install check
// and build are scripts/test's) then `scripts/lab down`, as child processes. The first matrix must show no FAIL and say how long
// it and the whole `up` took; `down` must leave none of the lab's namespaces behind. The state
// file lives in this test's temp dir (PODMESH_LAB_STATE), so a demo someone else runs is untouched.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Lab, ROOT, nsExec, sh, waitFor } from './cluster'
import { matrixSummary, renderMatrix, runMatrix, unsettledAddresses, type MatrixResult } from './demo-matrix'
import type { LabPod } from './cluster'

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs scripts/lab with the test's state file; output read at 'close' (all of it is in by then). */
async function lab (args: string[], state: string): Promise<Run> {
  return await new Promise((resolve, reject) => {
    // PODMESH_LAB_SKIP_DEPS: scripts/test ran install-deps before tap, and building again here
    // would rewrite dist/ under the lab tests that run beside this one.
    const p = spawn(join(ROOT, 'scripts', 'lab'), args, { env: { ...process.env, PODMESH_LAB_STATE: state, PODMESH_LAB_SKIP_DEPS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', d => { stdout += String(d) })
    p.stderr.on('data', d => { stderr += String(d) })
    p.on('error', reject)
    p.on('close', code => resolve({ code, stdout, stderr }))
  })
}

t.test('scripts/lab up: the first matrix is full, timed; scripts/lab down removes the lab', async t => {
  t.setTimeout(10 * 60_000)
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-demo-test-'))
  const state = join(dir, 'lab.json')
  t.teardown(async () => {
    // A failed assertion must not leave the lab running.
    if (existsSync(state)) await lab(['down'], state)
    rmSync(dir, { recursive: true, force: true })
  })

  const up = await lab(['up'], state)
  t.equal(up.code, 0, `scripts/lab up exits 0\n${up.stderr}\n${up.stdout}`)
  const id = /^podmesh demo lab (pm[0-9a-f]{4}):/m.exec(up.stdout)?.[1]
  t.ok(id, 'the lab names itself')

  // The matrix: the lines between its title and its summary, one per source pod after the header.
  const section = /\nping matrix \(IPv4 \/ IPv6\):\n([^]*?)\nmatrix: /.exec(up.stdout)?.[1] ?? ''
  const rows = section.split('\n').slice(1)
  t.equal(rows.length, 6, 'one matrix row per pod')
  for (const r of rows) {
    const cells = r.trim().split(/\s+/).slice(1)
    t.strictSame(cells.filter(c => c !== '-'), Array(5).fill('ok/ok'), `every cell ok, IPv4 and IPv6: ${r.trim()}`)
  }
  t.notMatch(up.stdout, /FAIL/, 'no FAIL anywhere on the first screen')
  t.match(up.stdout, /^matrix: 60\/60 ok in \d+\.\d s( \(\d+ answered on a retry\))?$/m, 'the matrix says how long it took')
  t.match(up.stdout, /^up: full matrix \d+\.\d s after start \(install check and build \d+\.\d s, lab \d+\.\d s, pod addresses \d+\.\d s, matrix \d+\.\d s\)$/m,
    'and how long from the start of up')
  t.ok(existsSync(state), 'up recorded the lab for down')

  const down = await lab(['down'], state)
  t.equal(down.code, 0, down.stderr)
  t.match(down.stdout, `demo lab ${id ?? '?'} removed`)
  t.notOk(existsSync(state), 'the state file is gone')
  const left = (await sh('ip', ['netns', 'list'])).split('\n').filter(l => id !== undefined && l.startsWith(id))
  t.strictSame(left, [], 'no namespace of the lab is left')
})

t.test('a pair that still fails after its retries is shown as FAIL and named', async t => {
  const pod = (name: string, ips: string[]): LabPod => ({ name, ips, ns: name, node: undefined as never })
  const a = pod('node-1-p1', ['10.244.1.2', 'fd00::2'])
  const b = pod('node-2-p1', ['10.244.2.2', 'fd00:1::2'])
  const r: MatrixResult = {
    ms: 3400,
    pairs: [
      { from: a, to: b, ip: '10.244.2.2', ok: true, attempts: 1 },
      { from: a, to: b, ip: 'fd00:1::2', ok: false, attempts: 3 },
      { from: b, to: a, ip: '10.244.1.2', ok: true, attempts: 2 },
      { from: b, to: a, ip: 'fd00::2', ok: true, attempts: 1 }
    ]
  }
  t.equal(renderMatrix([a, b], r),
    '  from \\ to  node-1-p1  node-2-p1\n' +
    '  node-1-p1  -          ok/FAIL\n' +
    '  node-2-p1  ok/ok      -\n')
  t.equal(matrixSummary(r), 'matrix: 3/4 ok in 3.4 s (1 answered on a retry)\n  FAIL node-1-p1 -> node-2-p1 fd00:1::2 (no reply to 3 pings)\n')
})

t.test('an IPv6 address in duplicate address detection counts as not usable until DAD is done', async t => {
  const ns = `pmdad${randomBytes(2).toString('hex')}`
  await sh('ip', ['netns', 'add', ns])
  t.teardown(async () => { await sh('ip', ['netns', 'del', ns], { allowFail: true }) })
  await nsExec(ns, ['ip', 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1'])
  await nsExec(ns, ['ip', 'link', 'set', 'v1', 'up'])
  await nsExec(ns, ['ip', 'link', 'set', 'v0', 'up'])
  // Without nodad: the kernel runs DAD (about a second with the default one probe).
  await nsExec(ns, ['ip', '-6', 'addr', 'add', '2001:db8:5::1/64', 'dev', 'v0'])
  t.ok((await unsettledAddresses(ns, 'v0')).includes('2001:db8:5::1'), 'tentative right after it was added')
  await waitFor('DAD done on v0', 20_000, async () => (await unsettledAddresses(ns, 'v0')).length === 0)
  t.strictSame(await unsettledAddresses(ns, 'v0'), [], 'settled')
})

t.test('the bounded retry: a pod that answers again within the tries is ok on a retry, one that does not is FAIL', async t => {
  t.setTimeout(5 * 60_000)
  const lab = await Lab.create({ nodes: 2, podsPerNode: 1, backend: 'wireguard', dualStack: true })
  t.teardown(async () => await lab.destroy())
  const [a, b] = lab.nodes.map(n => n.pods[0]!)
  if (a === undefined || b === undefined) throw new Error('the lab has no pods')
  // b drops echo requests, counted per family, in its own namespace only.
  const nft = async (script: string): Promise<void> => { await sh('ip', ['netns', 'exec', b.ns, 'nft', '-f', '-'], { input: script }) }
  const block = 'table inet demotest {\n chain in {\n  type filter hook input priority 0;\n  icmp type echo-request counter drop\n  icmpv6 type echo-request counter drop\n }\n}\n'
  const dropped = async (): Promise<number[]> => {
    const out = await nsExec(b.ns, ['nft', '-j', 'list', 'table', 'inet', 'demotest'])
    return (JSON.parse(out) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> }).nftables
      .flatMap(x => x.rule?.expr.flatMap(e => e.counter !== undefined ? [e.counter.packets] : []) ?? [])
  }

  // Unblocked once each family's first request was dropped: those pairs need a second try.
  await nft(block)
  const running = runMatrix(lab)
  await waitFor('a dropped request per family', 30_000, async () => (await dropped()).every(n => n >= 1))
  await nft('delete table inet demotest\n')
  const retried = await running
  const toB = retried.pairs.filter(p => p.to === b)
  t.strictSame(toB.map(p => p.ok), [true, true], 'both of b\'s addresses answered in the end')
  t.ok(toB.every(p => p.attempts >= 2), `on a retry (${toB.map(p => p.attempts).join(', ')} tries)`)
  t.ok(retried.pairs.filter(p => p.to === a).every(p => p.ok), 'a answered b')
  t.match(matrixSummary(retried), /^matrix: 4\/4 ok in \d+\.\d s \([234] answered on a retry\)\n$/)

  // Blocked for good: after its 3 tries each of b's addresses is a FAIL, shown and named.
  await nft(block)
  const failed = await runMatrix(lab)
  t.strictSame(failed.pairs.filter(p => p.to === b).map(p => [p.ok, p.attempts]), [[false, 3], [false, 3]])
  t.match(renderMatrix([a, b], failed), new RegExp(`^  ${a.name} +- +FAIL/FAIL$`, 'm'))
  t.match(matrixSummary(failed), new RegExp(`^matrix: 2/4 ok in \\d+\\.\\d s\n  FAIL ${a.name} -> ${b.name} ${b.ips[0]!.replace(/\./g, '\\.')} \\(no reply to 3 pings\\)\n`))
})

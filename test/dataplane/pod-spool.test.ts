// The spool on disk: atomic writes, idempotent removal, and a read that skips and reports bad files.
import t from 'tap'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readPodReport, readPodSpool, removePodReport, writePodReport } from '../../lib/dataplane/pod-spool'
import type { PodReport } from '../../lib/cni-plugin/pod-report'

const report = (id: string): PodReport => ({ v: 1, id, ifname: 'eth0', ips: ['10.22.0.5'], labels: { app: 'web' }, netns: `/var/run/netns/${id}` })

t.test('write, read, remove', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-spool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const spool = join(dir, 'run', 'pods')
  t.strictSame(await readPodSpool(spool), { reports: [], bad: [] }, 'a missing dir is an empty spool')
  writePodReport(spool, report('b'))
  writePodReport(spool, report('a'))
  t.strictSame(readdirSync(spool), ['a.json', 'b.json'])
  t.strictSame(readPodReport(spool, 'a'), report('a'))
  t.equal(readPodReport(spool, 'c'), undefined)
  t.strictSame((await readPodSpool(spool)).reports.map(r => r.id), ['a', 'b'])
  t.equal(removePodReport(spool, 'a'), true)
  t.equal(removePodReport(spool, 'a'), false, 'removing twice is fine')
  t.strictSame((await readPodSpool(spool)).reports.map(r => r.id), ['b'])
})

t.test('bad files are reported and skipped', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-spool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writePodReport(dir, report('good'))
  writeFileSync(join(dir, 'broken.json'), '{"v":1,')
  writeFileSync(join(dir, 'notes.txt'), 'hello')
  writeFileSync(join(dir, '.good.123.abcd.tmp'), 'half a wr')
  mkdirSync(join(dir, 'adir.json'))
  const s = await readPodSpool(dir)
  t.strictSame(s.reports.map(r => r.id), ['good'])
  t.match(s.bad, [
    { file: join(dir, 'adir.json'), problem: /unreadable/ },
    { file: join(dir, 'broken.json'), problem: /not JSON/ },
    { file: join(dir, 'notes.txt'), problem: /not a pod report name/ }
  ], 'each bad file named with its problem; the temp file is a write in flight, not bad')
  t.equal(s.bad.length, 3)
})

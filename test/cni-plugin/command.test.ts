// One plugin invocation from environment and stdin to stdout and exit code, against a real spool
// in a temp dir: ADD/DEL/CHECK/VERSION and the error object of each refusal.
import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runPlugin, type SpoolAccess } from '../../lib/cni-plugin/command'
import { readPodReport, readPodSpool, removePodReport, writePodReport } from '../../lib/dataplane/pod-spool'

const spool: SpoolAccess = { write: writePodReport, remove: removePodReport, read: readPodReport }
const prevResult = {
  cniVersion: '1.0.0',
  interfaces: [{ name: 'cni0', mac: 'aa:aa:aa:aa:aa:aa' }, { name: 'eth0', mac: 'cc:cc:cc:cc:cc:cc', sandbox: '/var/run/netns/p1' }],
  ips: [{ interface: 1, address: '10.22.0.5/24', gateway: '10.22.0.1' }],
  dns: {}
}

t.test('ADD, CHECK, DEL, VERSION', async t => {
  const dir = join(mkdtempSync(join(tmpdir(), 'podmesh-spool-')), 'pods')
  t.teardown(() => rmSync(join(dir, '..'), { recursive: true, force: true }))
  const env = (command: string, extra: Record<string, string> = {}): Record<string, string> => ({
    CNI_COMMAND: command, CNI_CONTAINERID: 'pod1', CNI_NETNS: '/var/run/netns/p1', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni',
    CNI_ARGS: 'K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1', ...extra
  })
  const conf = (extra: Record<string, unknown> = {}): string => JSON.stringify({
    cniVersion: '1.0.0', name: 'podmesh', type: 'podmesh', podDir: dir, args: { cni: { labels: [{ key: 'app', value: 'web' }] } }, prevResult, ...extra
  })

  const add = runPlugin(env('ADD'), conf(), spool)
  t.equal(add.exitCode, 0, add.stdout)
  t.strictSame(JSON.parse(add.stdout), prevResult, 'stdout is prevResult, unchanged')
  t.strictSame(await readPodSpool(dir), {
    reports: [{ v: 1, id: 'pod1', ifname: 'eth0', ips: ['10.22.0.5'], namespace: 'shop', name: 'web-1', labels: { app: 'web' }, netns: '/var/run/netns/p1' }],
    bad: []
  }, 'the report is in the spool (made the dir)')
  t.strictSame(readdirSync(dir), ['pod1.json'], 'no temp file left')
  t.strictSame(runPlugin(env('ADD'), conf(), spool).exitCode, 0, 'ADD again (a retried ADD) replaces it')

  t.strictSame(runPlugin(env('CHECK'), conf(), spool), { stdout: '', exitCode: 0 }, 'CHECK: the report matches')
  const other = runPlugin(env('CHECK'), conf({ args: { cni: { labels: [{ key: 'app', value: 'db' }] } } }), spool)
  t.match(JSON.parse(other.stdout), { cniVersion: '1.0.0', code: 100, msg: /differs from the pod/, details: /"app":"web".*"app":"db"/ }, 'CHECK: a different pod is named')
  t.match(JSON.parse(runPlugin(env('CHECK'), conf({ cniVersion: '0.3.1', prevResult: { ...prevResult, cniVersion: '0.3.1' } }), spool).stdout),
    { cniVersion: '0.3.1', code: 1, msg: /has no CHECK/ }, 'CHECK before 0.4.0 is refused in the config\'s version')

  t.strictSame(runPlugin(env('DEL'), conf({ prevResult: undefined }), spool), { stdout: '', exitCode: 0 }, 'DEL')
  t.strictSame((await readPodSpool(dir)).reports, [], 'DEL removed the report')
  t.strictSame(runPlugin(env('DEL', { CNI_NETNS: '' }), conf({ prevResult: undefined }), spool), { stdout: '', exitCode: 0 }, 'DEL again, netns gone: fine')
  const check = runPlugin(env('CHECK'), conf(), spool)
  t.equal(check.exitCode, 1)
  t.match(JSON.parse(check.stdout), { code: 100, msg: /no report for container pod1/ }, 'CHECK without a report fails')

  writeFileSync(join(dir, 'pod1.json'), '{"v":1')
  t.match(JSON.parse(runPlugin(env('CHECK'), conf(), spool).stdout), { code: 100, msg: /pod report .*pod1\.json: not JSON/ }, 'CHECK of a bad file names it')
  unlinkSync(join(dir, 'pod1.json'))

  t.strictSame(JSON.parse(runPlugin({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}', spool).stdout),
    { cniVersion: '1.0.0', supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'] })
})

t.test('refusals: the error object on stdout, exit 1, nothing written', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-spool-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'pod2', CNI_NETNS: '/var/run/netns/p2', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' }
  const conf = (extra: Record<string, unknown> = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'podmesh', type: 'podmesh', podDir: dir, prevResult, ...extra })
  const cases: Array<[string, Record<string, string>, string, Record<string, unknown>]> = [
    ['no prevResult', env, conf({ prevResult: undefined }), { cniVersion: '1.0.0', code: 7, msg: /prevResult is missing/ }],
    ['bad label', env, conf({ args: { cni: { labels: [{ key: 'app', value: 'we b' }] } } }), { code: 7, msg: /label app: "we b" is not a valid label value/, details: 'we b' }],
    ['bad container ID', { ...env, CNI_CONTAINERID: 'a/b' }, conf(), { code: 4, msg: /CNI_CONTAINERID/ }],
    ['stdin not JSON', env, 'nope', { cniVersion: '1.0.0', code: 6 }],
    ['podDir is a file', env, conf({ podDir: join(dir, 'file') }), { code: 5, msg: /write the pod report/ }]
  ]
  writeFileSync(join(dir, 'file'), '')
  for (const [name, e, stdin, want] of cases) {
    const out = runPlugin(e, stdin, spool)
    t.equal(out.exitCode, 1, `${name}: exit 1`)
    t.match(JSON.parse(out.stdout), want, name)
  }
  t.strictSame(readdirSync(dir), ['file'], 'no report written')
})

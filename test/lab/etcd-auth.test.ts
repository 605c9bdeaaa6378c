// podmeshd under etcd auth (issue #10, "Least privilege in etcd"), in the netns lab: the lab runs
// `podmeshctl auth enable` after init and `podmeshctl node credentials` per node, and each
// podmeshd runs as its own etcd user (PODMESH_ETCD_USERNAME/PASSWORD in its environment, as
// from /etc/default/podmeshd). The mesh forms; podmeshctl works as root; a node's user cannot
// overwrite another node's record while the mesh keeps working; a restart keeps the subnet; an
// etcd restart (every auth token lost) does not stop the watch: a node joining afterwards is
// reachable; a wrong password stops podmeshd with an error naming the user, not the password.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { Lab, nsExec, sleep, waitFor, type LabNode } from './cluster'

t.setTimeout(10 * 60_000)
const PREFIX = '/podmesh/default/'

let lab: Lab
t.before(async () => { lab = await Lab.create({ nodes: 3, podsPerNode: 1, backend: 'wireguard', etcdAuth: true }) })
t.teardown(async () => { await lab?.destroy() })

const fullMatrix = async (): Promise<boolean> => (await lab.podMatrix({ timeoutS: 1 })).length === 0
const cidrsOf = async (name: string): Promise<string[]> =>
  (JSON.parse((await lab.etcdctl('get', '--print-value-only', `${PREFIX}nodes/${name}`)).trim()) as { podCIDRs: string[] }).podCIDRs
/** The error an etcdctl call failed with ('' when it succeeded). */
const failure = async (p: Promise<unknown>): Promise<string> => await p.then(() => '', (e: unknown) => (e as Error).message)

t.test('the mesh forms with every node on its own etcd user; auth is really on', async t => {
  t.ok(lab.etcdRoot !== undefined, 'the lab turned auth on')
  for (const n of lab.nodes) t.equal(n.credential?.user, `podmesh-node-${n.name}`, `${n.name} runs as its own user`)
  await waitFor('the pod matrix', 20_000, fullMatrix).catch(() => undefined)
  t.strictSame(await lab.podMatrix(), [], 'full pod matrix')
  t.match(await failure(lab.etcdctlAs(undefined, 'get', '--prefix', PREFIX)), /user name is empty|permission denied|invalid auth/i, 'anonymous reads are refused')
})

t.test('podmeshctl status and nodes with the root credentials', async t => {
  const nodes = await lab.ctl('nodes', '-o', 'json')
  const list = JSON.parse(nodes) as Array<{ name: string, health: string }>
  t.strictSame(list.map(n => n.name).sort(), ['node-1', 'node-2', 'node-3'])
  await waitFor('every node ok in podmeshctl status', 20_000, async () => {
    const rows = JSON.parse(await lab.ctl('status', '-o', 'json')) as Array<{ node: string, converged: boolean }>
    return rows.length === 3 && rows.every(r => r.converged)
  })
  t.match(await lab.ctl('status'), /node-1/, 'status renders')
  t.match(await lab.ctl('nodes'), /node-3/, 'nodes renders')
})

t.test('node-1\'s user cannot overwrite node-2\'s record; the mesh keeps working', async t => {
  const [n1, n2] = lab.nodes as [LabNode, LabNode]
  const before = (await lab.etcdctl('get', '--print-value-only', `${PREFIX}nodes/${n2.name}`)).trim()
  const fake = JSON.stringify({ ...JSON.parse(before) as object, endpoint: '192.0.2.250:51820' })
  t.match(await failure(lab.etcdctlAs(n1.credential, 'put', `${PREFIX}nodes/${n2.name}`, fake)), /permission denied/, 'put nodes/node-2 as node-1: permission denied')
  t.match(await failure(lab.etcdctlAs(n1.credential, 'del', `${PREFIX}nodes/${n2.name}`)), /permission denied/, 'del nodes/node-2 as node-1: permission denied')
  t.match(await failure(lab.etcdctlAs(n1.credential, 'put', `${PREFIX}status/${n2.name}`, '{}')), /permission denied/, 'put status/node-2 as node-1: permission denied')
  t.equal(await failure(lab.etcdctlAs(n1.credential, 'get', `${PREFIX}nodes/${n2.name}`)), '', 'node-1 may read node-2\'s record')
  t.equal((await lab.etcdctl('get', '--print-value-only', `${PREFIX}nodes/${n2.name}`)).trim(), before, 'node-2\'s record unchanged')
  await sleep(2500) // a resync or two
  t.strictSame(await lab.podMatrix(), [], 'full pod matrix')
})

t.test('a node restarted under auth keeps its subnet', async t => {
  const n2 = lab.nodes[1] as LabNode
  const before = await cidrsOf(n2.name)
  await n2.stop()
  await n2.start()
  t.strictSame(await cidrsOf(n2.name), before, 'same pod subnets after the restart')
  await waitFor('the pod matrix', 20_000, fullMatrix).catch(() => undefined)
  t.strictSame(await lab.podMatrix(), [], 'full pod matrix')
})

t.test('etcd restarted under auth (every token lost): watches resume, a node joining afterwards is reachable', async t => {
  await lab.stopEtcd()
  await sleep(1000)
  await lab.startEtcd()
  const n4 = await lab.addNode(4)
  await n4.start([], 60_000)
  await n4.addPod(1)
  const ms = await waitFor('the full matrix with node-4', 30_000, fullMatrix).catch(() => -1)
  t.ok(ms >= 0, 'every pod reaches node-4\'s pod and back after the etcd restart')
  if (ms >= 0) t.comment(`node-4's pod reachable from every pod ${ms} ms after it was added`)
  for (const n of lab.nodes) t.equal(n.daemon?.exitCode, null, `podmeshd on ${n.name} still runs`)
})

t.test('a wrong password: podmeshd stops with an error naming the user, never the password', async t => {
  const n5 = await lab.addNode(5)
  const good = n5.credential
  if (good === undefined) throw new Error('node-5 has no credentials')
  const wrong = `wrong-${randomBytes(12).toString('hex')}`
  const d = n5.spawnDaemon([], { user: good.user, password: wrong })
  const code = await new Promise<number | null>(resolve => {
    const timer = setTimeout(() => resolve(null), 30_000)
    d.once('exit', c => { clearTimeout(timer); resolve(c) })
  })
  const log = readFileSync(n5.logFile, 'utf8')
  t.comment(`podmeshd with a wrong password: exit ${String(code)}; ${log.trim().split('\n').slice(-2).join(' / ').slice(0, 600)}`)
  t.not(code, null, 'podmeshd exits (does not retry a wrong password forever)')
  t.not(code, 0, 'with a failure status')
  const failed = log.split('\n').filter(l => /"level":(50|60)/.test(l))
  t.comment(`its error lines: ${failed.map(l => l.slice(0, 400)).join('\n')}`)
  t.ok(failed.some(l => l.includes(good.user) && /authentication failed|invalid user ?name or password/i.test(l)),
    'an error line says authentication failed and names the user')
  t.notMatch(log, new RegExp(wrong), 'the wrong password is not in the log')
  t.notMatch(log, new RegExp(good.password), 'nor the right one')
  await n5.start() // the right one works
  t.equal(n5.daemon?.exitCode, null, 'node-5 runs with its right password')
  t.match(await nsExec(n5.ns, ['curl', '-s', '-m', '2', `${n5.metricsUrl}/readyz`]), /^ready/, 'and is ready')
})

// The config watch under auth after the etcd restart above: some nodes' watches were cancelled by
// etcd then ("invalid auth token", a token it had not replayed yet); they must still notice a
// config written now. (Deterministically at store level: test/store/config-watch.test.ts.)
t.test('after the etcd restart every node still notices a config written to etcd', async t => {
  const written = JSON.parse(await lab.ctl('init', '--ipv4-cidr', '10.244.0.0/16', '--subnet-len4', '24', '--ipv6-cidr', 'fd00:10:244::/56',
    '--subnet-len6', '64', '--backend', 'wireguard', '--mtu', '1380', '--force', '-o', 'json')) as { revision: string }
  t.match(written.revision, /^\d+$/, `config written at revision ${written.revision}`)
  for (const n of lab.nodes) {
    const stale = await waitFor(`${n.name}: podmesh_config_stale 1`, 15_000, async () =>
      /^podmesh_config_stale 1$/m.test(await nsExec(n.ns, ['curl', '-s', '-m', '2', `${n.metricsUrl}/metrics`]))).then(() => true, () => false)
    t.ok(stale, `${n.name} noticed the config change`)
  }
})

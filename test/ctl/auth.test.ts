// `podmeshctl auth enable` and `podmeshctl node credentials` as an operator runs them: a child
// process against a real etcd. The passwords they print work, and a node's are refused by etcd
// for another node's keys (the store-level detail is in test/store/least-privilege.test.ts).
import t from 'tap'
import { compileEntry } from '../harness/compile'
import { type CliRun, runCli } from '../harness/ctl'
import { startEtcd } from '../harness/etcd'

type Run = CliRun
let cli = ''
const ctl = async (args: string[], env: Record<string, string> = {}): Promise<Run> => await runCli(cli, args, env)

t.before(async () => { cli = await compileEntry(t, 'cmd/podmeshctl.ts') })

interface Cred { user: string, password: string, roles: string[] }

t.test('auth enable, node credentials', async t => {
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  const as = (c: Cred): string[] => [...E, '--etcd-username', c.user, '--etcd-password', c.password]
  t.equal((await ctl(['init', '--ipv4-cidr', '10.244.0.0/16', ...E])).code, 0)

  const enabled = await ctl(['auth', 'enable', ...E, '-o', 'json'])
  t.equal(enabled.code, 0, enabled.stderr)
  const [root, admin] = JSON.parse(enabled.stdout) as Cred[]
  if (root === undefined || admin === undefined) throw new Error(`auth enable printed ${enabled.stdout}`)
  t.strictSame([root.user, admin.user], ['root', 'podmesh-admin'])
  t.match(await etcd.etcdctl(['--user', `root:${root.password}`, 'role', 'list']), /^podmesh-admin\npodmesh-read\n/)

  // Without credentials podmeshctl is now refused; the admin runs the routine commands.
  const anon = await ctl(['config', 'show', ...E])
  t.equal(anon.code, 1, 'no credentials → exit 1')
  t.equal((await ctl(['config', 'show', ...as(admin)])).code, 0, 'podmesh-admin reads the config')

  // Managing users needs root: the admin cannot mint node credentials.
  t.equal((await ctl(['node', 'credentials', 'node-a', ...as(admin)])).code, 1, 'podmesh-admin cannot create users')
  const made = await ctl(['node', 'credentials', 'node-a', ...as(root), '-o', 'json'])
  t.equal(made.code, 0, made.stderr)
  const [a] = JSON.parse(made.stdout) as Cred[]
  if (a === undefined) throw new Error(`node credentials printed ${made.stdout}`)
  t.equal(a.user, 'podmesh-node-node-a')
  t.ok(a.password.length >= 20, 'a generated password')
  const table = await ctl(['node', 'credentials', 'node-b', ...as(root)])
  t.match(table.stdout, /^USER\s+ROLES\s+PASSWORD\npodmesh-node-node-b\s+podmesh-node-node-b\s+\S{20,}\n/)
  t.equal((await ctl(['node', 'credentials', 'Not_A_Name', ...as(root)])).code, 1, 'an invalid node name is refused')

  // node-a's credentials read the cluster but cannot remove node-b.
  const listed = await ctl(['nodes', ...as(a)])
  t.equal(listed.code, 0, `a node lists the nodes ${listed.stderr}`)
  await etcd.etcdctl(['--user', `root:${root.password}`, 'put', '/podmesh/default/nodes/node-b', '{"v":1}'])
  const removed = await ctl(['node', 'remove', 'node-b', ...as(a)])
  t.equal(removed.code, 1)
  t.match(removed.stderr, /permission denied/)
  t.equal((await etcd.etcdctl(['--user', `root:${root.password}`, 'get', '--print-value-only', '/podmesh/default/nodes/node-b'])).trim(), '{"v":1}')

  // Again: the node's password is rotated (the old one stops working); auth enable run again
  // leaves root's and podmesh-admin's passwords as they are.
  const rotated = await ctl(['node', 'credentials', 'node-a', ...as(root), '-o', 'json'])
  t.equal(rotated.code, 0, rotated.stderr)
  const [a2] = JSON.parse(rotated.stdout) as Cred[]
  const old = await ctl(['nodes', ...as(a)])
  t.equal(old.code, 1, `the old node password is refused ${old.stderr}`)
  const fresh = await ctl(['nodes', ...as(a2 ?? a)])
  t.equal(fresh.code, 0, `the new one works ${fresh.stderr}`)
  const again = await ctl(['auth', 'enable', ...as(root)])
  t.equal(again.code, 0, again.stderr)
  t.match(again.stdout, /root\s+root\s+\(unchanged\)/)
  t.equal((await ctl(['config', 'show', ...as(admin)])).code, 0, 'podmesh-admin\'s password still works')
})

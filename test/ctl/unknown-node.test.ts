// Every podmeshctl subcommand that takes a node name, given one etcd does not know: one line on
// stderr naming the node and the cluster (or prefix) asked, exit 1, no stack trace, nothing on
// stdout. Against a real etcd with a cluster that has one node, so "unknown" is not "empty".
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import { startEtcd } from '../harness/etcd'
import { compileEntry } from '../harness/compile'
import { runCli } from '../harness/ctl'
import { fields, tempDir, testClient } from '../harness/store'

t.test('an unknown node name: one line, exit 1', async t => {
  const cli = await compileEntry(t, 'cmd/podmeshctl.ts')
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  for (const where of [[], ['--prefix', '/custom/podmesh/']]) {
    const init = await runCli(cli, ['init', '--ipv4-cidr', '10.244.0.0/16', ...where, ...E])
    t.equal(init.code, 0, init.stderr)
  }
  const client = await testClient(t, etcd.endpoints)
  const config = parseNetworkConfig(JSON.parse((await runCli(cli, ['config', 'show', '-o', 'json', ...E])).stdout))
  const h = await acquireNode({ client, prefix: '/podmesh/default/', config, name: 'node-1', stateDir: await tempDir(t), record: fields(1) })
  t.teardown(async () => await h.close())

  const known = await runCli(cli, ['status', 'node-1', ...E])
  t.equal(known.code, 0, `a known node is found: ${known.stderr}`)
  t.match(known.stdout, /^node-1\s/m)

  const cases: Array<[string[], string]> = [
    [['status', 'nosuch'], 'no node named "nosuch" in cluster "default"'],
    [['status', 'nosuch', '-o', 'json'], 'no node named "nosuch" in cluster "default"'],
    [['status', 'node-1', '--prefix', '/custom/podmesh/'], 'no node named "node-1" in prefix "/custom/podmesh/"'],
    [['diff', 'nosuch'], 'no node named "nosuch" in cluster "default"'],
    [['node', 'remove', 'nosuch'], 'no node named "nosuch" in cluster "default" (no record, subnet lease or status to remove)'],
    // A node's credentials may be made before it first starts (that is how it is provisioned), so
    // an unregistered name is fine there; a name no node can have is not.
    [['node', 'credentials', 'no/such'], 'key "/podmesh/default/nodes/no/such": "no/such" is not a valid node name']
  ]
  for (const [args, message] of cases) {
    const r = await runCli(cli, [...args, ...E])
    t.equal(r.code, 1, `exit 1: ${args.join(' ')}`)
    t.equal(r.stderr, `podmeshctl: ${message}\n`, `one line: ${args.join(' ')}`)
    t.equal(r.stdout, '', `nothing on stdout: ${args.join(' ')}`)
  }
})

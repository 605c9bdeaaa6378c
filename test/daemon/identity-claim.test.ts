// The start-time refusal against a real etcd: a node whose key or MAC a live node's record holds is
// refused before it takes a lease, the earlier claimant restarting is not; the refusal names the
// other node, the state-dir files and the fix.
import t from 'tap'
import { join } from 'node:path'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import { NodeWatcher } from '../../lib/store/node-watch'
import { nodeKey, subnetKey } from '../../lib/store/keys'
import { formatSubnetValue } from '../../lib/store/subnet-value'
import { IdentityClaimedError, claimedAtStart, isIdentityClaimedError } from '../../lib/daemon/identity-claim'
import { EXIT_STATUS } from '../../lib/daemon/exit-status'
import { startEtcd } from '../harness/etcd'
import { fields, tempDir, testClient, testKey } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, backend: { type: 'wireguard', wireguard: { vxlanWithinLocation: true } } })
const prefix = '/podmesh/claims/'

t.test('claims at start', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const watcher = (): NodeWatcher => new NodeWatcher({ client, prefix, config })
  const holder = await acquireNode({ client, prefix, config, name: 'node-1', stateDir: await tempDir(t), record: { ...fields(1), vxlan: { mac: '02:00:00:00:00:01' } } })
  t.teardown(async () => await holder.close())

  t.strictSame(await claimedAtStart(watcher(), { name: 'node-9', publicKey: testKey(1) }),
    [{ node: 'node-9', holder: 'node-1', what: 'publicKey', value: testKey(1) }], 'a copy of node-1\'s key')
  t.strictSame(await claimedAtStart(watcher(), { name: 'node-9', publicKey: testKey(9), vxlanMac: '02:00:00:00:00:01' }),
    [{ node: 'node-9', holder: 'node-1', what: 'vxlanMac', value: '02:00:00:00:00:01' }], 'a copy of node-1\'s MAC')
  t.strictSame(await claimedAtStart(watcher(), { name: 'node-9', publicKey: testKey(9), vxlanMac: '02:00:00:00:00:09' }), [], 'fresh ones')

  // A later record (hand-written, with a valid lease) reuses node-1's key: node-1 restarting is
  // the earlier claimant and goes on; the later one is what would be refused.
  await client.kv.txn({
    success: [
      { request_put: { key: Buffer.from(subnetKey(prefix, '10.244.200.0/24')), value: Buffer.from(formatSubnetValue('impostor')) } },
      { request_put: { key: Buffer.from(nodeKey(prefix, 'impostor')), value: Buffer.from(JSON.stringify({ v: 1, name: 'impostor', generation: 0, endpoint: '192.0.2.99:51820', publicKey: testKey(1), podCIDRs: ['10.244.200.0/24'], mtu: 1420 })) } }
    ]
  })
  t.strictSame(await claimedAtStart(watcher(), { name: 'node-1', publicKey: testKey(1), vxlanMac: '02:00:00:00:00:01' }), [], 'the holder restarts')
  t.strictSame(await claimedAtStart(watcher(), { name: 'impostor', publicKey: testKey(1) }),
    [{ node: 'impostor', holder: 'node-1', what: 'publicKey', value: testKey(1) }], 'the later record is refused')
})

t.test('the refusal says who, which files and how to fix it', async t => {
  const conflicts = [
    { node: 'node-4', holder: 'node-1', what: 'publicKey' as const, value: testKey(1) },
    { node: 'node-4', holder: 'node-1', what: 'vxlanMac' as const, value: '02:00:00:00:00:01' }
  ]
  const e = new IdentityClaimedError({ node: 'node-4', stateDir: join('/', 'var', 'lib', 'podmesh'), phase: 'start', conflicts })
  t.ok(isIdentityClaimedError(e))
  t.equal(e.code, 'EIDENTITYCLAIMED')
  t.equal(EXIT_STATUS.identityTaken, 3)
  t.strictSame(e.files, [join('/', 'var', 'lib', 'podmesh', 'wireguard.key'), join('/', 'var', 'lib', 'podmesh', 'vxlan-mac')])
  t.match(e.message, /^node node-4: refusing to publish this node's WireGuard public key \S+ \(node node-1\) and VXLAN MAC 02:00:00:00:00:01 \(node node-1\)/)
  t.match(e.message, 'copied from node node-1')
  t.match(e.message, 'remove it with `podmeshctl node remove node-1`', 'and the other way round')
  t.match(e.message, 'To fix: stop podmeshd on node-4, remove /var/lib/podmesh/wireguard.key and /var/lib/podmesh/vxlan-mac (new ones are made at the next start), then start podmeshd again')
  const running = new IdentityClaimedError({ node: 'node-4', stateDir: 'state', phase: 'running', conflicts: conflicts.slice(1) })
  t.strictSame(running.files, [join('state', 'vxlan-mac')])
  t.match(running.message, /lost its VXLAN MAC 02:00:00:00:00:01 \(node node-1\) to the earlier claimant; removing this node's keys from etcd/)
  t.notOk(isIdentityClaimedError(new Error(running.message)), 'the guard does not go by the message')
})

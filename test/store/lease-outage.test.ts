// etcd going away, two ways. A restarted etcd renews every lease, so a node that could not send
// keepalives for longer than its TTL still holds its keys. A node cut off from a running etcd
// for longer than its TTL loses them; when it is back it re-creates the same keys on a new lease.
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import { nodeKey, subnetKey } from '../../lib/store/keys'
import { NodeWatcher } from '../../lib/store/node-watch'
import { startEtcd } from '../harness/etcd'
import { startProxy } from '../harness/tcp-proxy'
import { dump, fields, tempDir, testClient, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' } })

t.test('etcd restarted after more than the TTL: the lease survives', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints, { callTimeoutMs: 1000 })
  const prefix = '/podmesh/restart/'
  const h = await acquireNode({ client, prefix, config, name: 'steady', stateDir: await tempDir(t), ttlSeconds: 2, record: fields(1) })
  t.teardown(async () => await h.close())
  const events: string[] = []
  h.on('lost', () => events.push('lost'))
  h.on('keepaliveFailed', () => events.push('keepaliveFailed'))
  const leaseId = h.leaseId
  const before = await dump(client, prefix)

  await etcd.stop()
  await waitFor('a failed keepalive', () => events.includes('keepaliveFailed'), 5000)
  await new Promise(resolve => setTimeout(resolve, 3000)) // > TTL without keepalives
  await etcd.start()
  // Well past the TTL after the restart: only keepalives can have kept the keys.
  await new Promise(resolve => setTimeout(resolve, 3000))
  t.strictSame(events, ['keepaliveFailed'], 'one failure report per streak, no loss')
  t.ok(h.held)
  t.equal(h.leaseId, leaseId, 'same lease')
  t.strictSame(await dump(client, prefix), before, 'same keys')
})

t.test('cut off for longer than the TTL: lost, then re-acquired with the same subnets', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const proxy = await startProxy(t, etcd.clientPort)
  const nodeClient = await testClient(t, [proxy.endpoint], { callTimeoutMs: 1000 })
  const prefix = '/podmesh/partition/'
  const watcher = new NodeWatcher({ client, prefix, config })
  t.teardown(async () => await watcher.stop())
  const removed: string[] = []
  const added: string[] = []
  watcher.on('change', c => { removed.push(...c.removed); added.push(...c.added) })
  await watcher.start()

  const h = await acquireNode({
    client: nodeClient, prefix, config, name: 'islander', stateDir: await tempDir(t), ttlSeconds: 2, record: fields(1),
    reacquireBackoff: { initialMs: 100, maxMs: 500 }
  })
  t.teardown(async () => await h.close())
  const cidrs = h.podCIDRs
  const oldLease = h.leaseId
  const events: string[] = []
  h.on('lost', () => events.push('lost'))
  h.on('keepaliveFailed', () => events.push('keepaliveFailed'))
  h.on('reacquired', () => events.push('reacquired'))
  await waitFor('islander seen', () => added.includes('islander'))

  proxy.pause()
  // etcd expires the lease: the keys go, and every watcher sees the node leave.
  await waitFor('expiry seen by the watch', () => removed.includes('islander'), 10_000)
  t.equal(await client.get(nodeKey(prefix, 'islander')).string(), null)
  t.ok(h.held, 'the cut-off node cannot know yet')
  proxy.resume()
  await waitFor('reacquired', () => events.includes('reacquired'), 15_000)
  t.strictSame(events.filter(e => e !== 'keepaliveFailed'), ['lost', 'reacquired'])
  t.ok(events.includes('keepaliveFailed'))
  t.ok(h.held)
  t.not(h.leaseId, oldLease)
  t.strictSame(h.podCIDRs, cidrs)
  await waitFor('islander back in the watch', () => added.filter(n => n === 'islander').length === 2)
  for (const c of cidrs) {
    const kv = (await client.get(subnetKey(prefix, c)).exec()).kvs[0]
    t.equal(BigInt(kv?.lease ?? 0).toString(), BigInt(h.leaseId).toString(), `${c} hangs on the new lease`)
  }
  // Publishing works on the new lease.
  const rec = await h.publish({ endpoint: '192.0.2.99:51820' })
  t.equal(JSON.parse(await client.get(nodeKey(prefix, 'islander')).string() ?? '{}').endpoint, rec.endpoint)
})

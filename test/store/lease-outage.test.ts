// An etcd outage longer than the lease TTL: the node notices the loss, keeps its subnets, and
// re-creates the same keys on a new lease when etcd is back — including a change published meanwhile.
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import { nodeKey, subnetKey } from '../../lib/store/keys'
import { startEtcd } from '../harness/etcd'
import { fields, tempDir, testClient, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' } })

t.test('lease lost during an outage is re-acquired with the same subnets', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints, { callTimeoutMs: 1000 })
  const prefix = '/podmesh/outage/'
  const h = await acquireNode({
    client, prefix, config, name: 'survivor', stateDir: await tempDir(t), ttlSeconds: 2, record: fields(1),
    reacquireBackoff: { initialMs: 100, maxMs: 500 }
  })
  t.teardown(async () => await h.close())
  const cidrs = h.podCIDRs
  const events: string[] = []
  h.on('lost', () => events.push('lost'))
  h.on('keepaliveFailed', () => events.push('keepaliveFailed'))
  h.on('reacquireFailed', (_e, retrying) => events.push(`reacquireFailed:${String(retrying)}`))
  h.on('reacquired', () => events.push('reacquired'))
  const oldLease = h.leaseId

  await etcd.stop()
  // etcd3 declares the lease lost after 2×TTL without a keepalive.
  await waitFor('lost', () => events.includes('lost'), 10_000)
  t.notOk(h.held)
  const rec = await h.publish({ endpoint: '192.0.2.99:51820' })
  t.equal(rec.endpoint, '192.0.2.99:51820', 'a publish while lost is kept for the re-acquisition')
  await waitFor('a failed attempt while etcd is down', () => events.some(e => e === 'reacquireFailed:true'), 5000)
  await etcd.start()
  await waitFor('reacquired', () => events.includes('reacquired'), 15_000)

  t.equal(events.filter(e => e === 'keepaliveFailed').length, 1, 'keepalive failure reported once per streak')
  t.ok(events.indexOf('lost') < events.indexOf('reacquired'))
  t.ok(h.held)
  t.not(h.leaseId, oldLease)
  t.strictSame(h.podCIDRs, cidrs)
  const stored = JSON.parse(await client.get(nodeKey(prefix, 'survivor')).string() ?? '{}') as { endpoint?: string, podCIDRs?: string[] }
  t.equal(stored.endpoint, '192.0.2.99:51820')
  t.strictSame(stored.podCIDRs, cidrs)
  for (const c of cidrs) {
    const kv = (await client.get(subnetKey(prefix, c)).exec()).kvs[0]
    t.equal(BigInt(kv?.lease ?? 0).toString(), BigInt(h.leaseId).toString(), `${c} hangs on the new lease`)
  }
})

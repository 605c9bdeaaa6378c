import t from 'tap'
import { publishStatus } from '../../lib/store/status'
import { statusKey } from '../../lib/store/keys'
import { startEtcd } from '../harness/etcd'
import { startProxy } from '../harness/tcp-proxy'
import { testClient, waitFor } from '../harness/store'

t.test('status keys', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/status/'
  const key = statusKey(prefix, 'n1')

  const p = await publishStatus(client, prefix, 'n1', { appliedGeneration: 1, peers: {} }, 2)
  t.strictSame(JSON.parse(await client.get(key).string() ?? 'null'), { v: 1, appliedGeneration: 1, peers: {} })
  const lease1 = (await client.get(key).exec()).kvs[0]?.lease
  await p.update({ appliedGeneration: 2, peers: { n2: { handshakeAgeSeconds: 3 } } })
  t.equal(JSON.parse(await client.get(key).string() ?? 'null').appliedGeneration, 2)
  t.equal((await client.get(key).exec()).kvs[0]?.lease, lease1, 'same lease for updates')
  // Kept alive past its TTL.
  await new Promise(resolve => setTimeout(resolve, 3000))
  t.not(await client.get(key).string(), null, 'alive after 1.5×TTL')
  await p.close()
  t.equal(await client.get(key).string(), null, 'close removes it at once')

  // A publisher cut off from etcd (dead node, partition) disappears at TTL.
  const proxy = await startProxy(t, etcd.clientPort)
  const other = await testClient(t, [proxy.endpoint], { callTimeoutMs: 1000 })
  await publishStatus(other, prefix, 'n2', { appliedGeneration: 1 }, 1)
  t.not(await client.get(statusKey(prefix, 'n2')).string(), null)
  proxy.pause()
  await waitFor('n2 status to expire', async () => (await client.get(statusKey(prefix, 'n2')).string()) === null, 5000)
})

// dropConnections: when the node's source address vanished, its open etcd connections are dead
// without knowing it; dropping them makes the next call dial afresh instead of waiting for a
// deadline or grpc's keepalive. Against a real etcd behind a proxy whose open connections go
// silent (new ones work), with a call deadline far above what a redial takes.
import t from 'tap'
import { dropConnections } from '../../lib/store/client'
import { startEtcd } from '../harness/etcd'
import { startProxy } from '../harness/tcp-proxy'
import { testClient } from '../harness/store'

t.test('after dropConnections the next call uses a new connection', async t => {
  const etcd = await startEtcd(t)
  const proxy = await startProxy(t, etcd.clientPort)
  const client = await testClient(t, [proxy.endpoint], { callTimeoutMs: 20_000 })
  await client.put('/podmesh/reconnect/probe').value('1')

  proxy.freeze()
  t.equal(dropConnections(client), true, "etcd3's connection pool still has the shape this relies on")
  const t0 = Date.now()
  await client.put('/podmesh/reconnect/probe').value('2')
  const ms = Date.now() - t0
  // A behaviour bound, not a speed: a fresh dial takes milliseconds, the silent connection holds a
  // call until grpc's keepalive gives up (~15 s); 10 s separates the two with room for a loaded machine.
  t.ok(ms < 10_000, `the put went through a new connection in ${ms} ms (the silent one holds it until grpc's keepalive gives up, ~15 s)`)
  t.equal(await client.get('/podmesh/reconnect/probe').string(), '2')
})

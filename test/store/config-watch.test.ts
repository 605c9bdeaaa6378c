// The config watch against a real etcd: a config changed after start is reported with its
// revision; nothing before the revision the reader runs is reported again.
import t from 'tap'
import { once } from 'node:events'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { readConfigRevision, writeConfig } from '../../lib/store/config-store'
import { ConfigWatcher, type ConfigChange } from '../../lib/store/config-watch'
import { configKey } from '../../lib/store/keys'
import { startEtcd } from '../harness/etcd'
import { testClient } from '../harness/store'

t.test('a config changed in etcd after start is reported, with its revision', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/cw/'
  const wg = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })
  await writeConfig(client, prefix, wg)
  const running = await readConfigRevision(client, prefix)
  t.strictSame(running.config, wg)
  t.match(running.revision, /^[1-9]\d*$/)

  const w = new ConfigWatcher({ client, prefix, revision: running.revision })
  t.teardown(async () => await w.stop())
  const changes: ConfigChange[] = []
  w.on('changed', c => changes.push(c))
  await w.start()

  const vx = { ...wg, backend: { ...wg.backend, type: 'vxlan' as const } }
  const written = await writeConfig(client, prefix, vx, { force: true })
  if (changes.length === 0) await once(w, 'changed')
  t.equal(changes.length, 1, 'the write before start is not reported, the change is')
  t.equal(changes[0]?.revision, written.revision)
  t.strictSame(changes[0]?.config, vx)
  t.equal(changes[0]?.deleted, false)
  t.ok(BigInt(written.revision) > BigInt(running.revision))

  // A value that is not a config is reported as such, never as a config.
  await client.put(configKey(prefix)).value('{"v":1,"ipv4":{"cidr":"0.0.0.0/0"}}')
  if (changes.length === 1) await once(w, 'changed')
  t.equal(changes[1]?.config, undefined)
  t.match(changes[1]?.error?.message, /0\.0\.0\.0\/0 is a default route/)

  await client.delete().key(configKey(prefix))
  if (changes.length === 2) await once(w, 'changed')
  t.equal(changes[2]?.deleted, true)
  t.ok(BigInt(changes[2]?.revision ?? '0') > BigInt(written.revision))
})

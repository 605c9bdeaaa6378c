// The config watch against a real etcd: a config changed after start is reported with its
// revision; nothing before the revision the reader runs is reported again.
import t from 'tap'
import { once } from 'node:events'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { readConfigRevision, writeConfig } from '../../lib/store/config-store'
import { ConfigWatcher, type ConfigChange } from '../../lib/store/config-watch'
import { configKey } from '../../lib/store/keys'
import { resolveEtcdOptions } from '../../lib/config/etcd-options'
import { authEnable, nodeCredentials } from '../../lib/ctl/auth'
import { type StoreClient, connectStore } from '../../lib/store/client'
import { startEtcd, type Teardownable } from '../harness/etcd'
import { testClient, waitFor } from '../harness/store'

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

// etcd3 reconnects a broken watch stream by itself, but drops a watch that etcd cancels. Under
// auth etcd cancels a re-created watch whose token it does not know ("invalid auth token"): in
// the lab this happens to some nodes after an etcd restart (a watch re-created before etcd has
// replayed the token from its log), and to any client after --auth-token-ttl of silence. Here,
// deterministically: the user's password is reset to the same value (etcd invalidates the
// user's tokens, and does so again when it replays its log at the restart), then etcd restarts.
// The watcher must read the key and watch again, reporting what changed meanwhile.
t.test('under etcd auth, the watch survives etcd forgetting its token', async t => {
  const etcd = await startEtcd(t)
  const prefix = '/podmesh/cwa/'
  const anon = await testClient(t, etcd.endpoints)
  const wg = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })
  await writeConfig(anon, prefix, wg)
  const [root] = await authEnable(anon, prefix)
  anon.close()
  const a = await nodeCredentials(await userClient(t, etcd.endpoint, 'root', root?.password ?? ''), prefix, 'node-a')
  const node = await userClient(t, etcd.endpoint, a.user, a.password ?? '')
  const running = await readConfigRevision(node, prefix)

  const w = new ConfigWatcher({ client: node, prefix, revision: running.revision, retryMs: 100 })
  t.teardown(async () => await w.stop())
  const changes: ConfigChange[] = []
  const errors: Error[] = []
  w.on('changed', c => changes.push(c))
  w.on('error', e => errors.push(e))
  await w.start()

  const rootClient = await userClient(t, etcd.endpoint, 'root', root?.password ?? '')
  await nodeCredentials(rootClient, prefix, 'node-a', a.password)
  await etcd.stop()
  await etcd.start()
  await waitFor('the watch to notice the restart', () => errors.length > 0, 20_000)
  const vx = { ...wg, backend: { ...wg.backend, type: 'vxlan' as const } }
  const written = await writeConfig(rootClient, prefix, vx, { force: true })
  await waitFor('the change after the restart', () => changes.length > 0, 20_000)
  t.equal(changes.length, 1, 'reported once')
  t.equal(changes[0]?.revision, written.revision)
  t.strictSame(changes[0]?.config, vx)
  t.comment(`watch errors seen: ${errors.map(e => e.message.slice(0, 80)).join(' | ')}`)
})

async function userClient (t: Teardownable, endpoint: string, username: string, password: string): Promise<StoreClient> {
  const c = await connectStore(resolveEtcdOptions({ endpoints: endpoint, username, password }))
  t.teardown(() => c.close())
  return c
}

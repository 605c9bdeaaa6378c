import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { isConfigError } from '../../lib/config/config-error'
import { isConfigMissing, isConfigStoreError, readConfig, writeConfig } from '../../lib/store/config-store'
import { configKey } from '../../lib/store/keys'
import { acquireNode } from '../../lib/store/node-lease'
import type { NetworkConfig } from '../../lib/config/network'
import { addService } from '../../lib/store/services'
import { startEtcd } from '../harness/etcd'
import { fields, tempDir, testClient } from '../harness/store'

t.test('config store', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/cfg/'
  const wg = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })

  const missing = await readConfig(client, prefix).catch((e: unknown) => e)
  t.ok(isConfigMissing(missing), 'absent config is ConfigStoreError missing')
  t.match(missing, { message: /podmeshctl init/ })

  const w = await writeConfig(client, prefix, wg)
  t.equal(w.created, true)
  t.strictSame(await readConfig(client, prefix), wg)
  t.equal(await client.get(configKey(prefix)).string(), JSON.stringify(wg), 'stored as plain JSON')

  const again = await writeConfig(client, prefix, wg).catch((e: unknown) => e)
  t.ok(isConfigStoreError(again) && again.problem === 'exists')
  t.match(again, { message: /already exists; use --force/ })

  // A node joins; now changing the backend says what it would do.
  const h = await acquireNode({ client, prefix, config: wg, name: 'n1', stateDir: await tempDir(t), record: fields(1) })
  t.teardown(async () => await h.close())
  const vx: NetworkConfig = { ...wg, backend: { ...wg.backend, type: 'vxlan' } }
  await t.rejects(writeConfig(client, prefix, vx), {
    problem: 'exists',
    message: /change the backend from wireguard to vxlan while 1 node record\(s\) exist.*use --force/
  })
  const wider = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.0.0.0/8' } })
  await t.rejects(writeConfig(client, prefix, wider), { message: /change the pod ranges while 1 node record\(s\) hold subnets/ })
  const forced = await writeConfig(client, prefix, vx, { force: true })
  t.equal(forced.created, false)
  t.equal((await readConfig(client, prefix)).backend.type, 'vxlan')

  // Invalid input is refused before etcd is touched; an invalid stored value is a ConfigError.
  const bad = { ...wg, ipv4: { cidr: '10.244.0.0/16', subnetLen: 16 } }
  const err = await writeConfig(client, prefix, bad, { force: true }).catch((e: unknown) => e)
  t.ok(isConfigError(err))
  t.equal((await readConfig(client, prefix)).backend.type, 'vxlan', 'unchanged')
  await client.put(configKey(prefix)).value('{"v":1,"ipv4":{"cidr":"10.244.0.0/33"}}')
  await t.rejects(readConfig(client, prefix), { code: 'ECONFIG', field: 'ipv4.cidr' })
  await client.put(configKey(prefix)).value('not json')
  await t.rejects(readConfig(client, prefix), { code: 'ECONFIG', problem: 'json' })
})

t.test('changing the service ranges while services exist says so', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/cfg-svc/'
  const withServices = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, services: { ipv4: '10.96.0.0/16' } })
  await writeConfig(client, prefix, withServices)
  const other = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, services: { ipv4: '10.97.0.0/16' } })
  await t.rejects(writeConfig(client, prefix, other), { problem: 'exists', message: /already exists; use --force/ })
  const err = await writeConfig(client, prefix, other).catch((e: unknown) => e)
  t.notMatch((err as Error).message, /service ranges/, 'no services yet: nothing to say')
  await addService(client, prefix, { name: 'web', ports: [{ protocol: 'tcp', port: 80, targetPort: 80 }], selector: { app: 'web' } })
  await t.rejects(writeConfig(client, prefix, other), { message: /change the service ranges while 1 service\(s\) hold cluster IPs and node ports of the old ones; use --force/ })
  await t.rejects(writeConfig(client, prefix, withServices), { message: /already exists; use --force/ })
  const same = await writeConfig(client, prefix, withServices).catch((e: unknown) => e)
  t.notMatch((same as Error).message, /service ranges/, 'the same ranges: nothing to say')
})

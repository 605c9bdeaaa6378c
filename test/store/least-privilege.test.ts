// etcd auth on, each node with the credentials `podmeshctl node credentials` makes: a node
// leases subnets, publishes its record and status, watches everyone and decommissions itself,
// and etcd refuses it (permission denied) every write to another node's record or status and
// to the config, and every write to services/, serviceips/, nodeports/ and other nodes' pods/.
// What it can still do (delete another node's subnet lease) is asserted too, so
// that docs/operations.md "Least privilege" stays true.
import t from 'tap'
import { resolveEtcdOptions } from '../../lib/config/etcd-options'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { authEnable, nodeCredentials } from '../../lib/ctl/auth'
import { type StoreClient, type StoreError, connectStore, isStoreError, storeCall } from '../../lib/store/client'
import { readConfig, writeConfig } from '../../lib/store/config-store'
import { configKey, nodeKey, statusKey, subnetKey } from '../../lib/store/keys'
import { acquireNode } from '../../lib/store/node-lease'
import { publishStatus } from '../../lib/store/status'
import { nodePodsPrefix, nodePortKey, serviceIpKey, serviceKey } from '../../lib/store/service-keys'
import { addService, removeService } from '../../lib/store/services'
import { getService, listServices } from '../../lib/store/service-read'
import { startEtcd } from '../harness/etcd'
import { fields, tempDir, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, services: { ipv4: '10.96.0.0/16' } })
const prefix = '/podmesh/auth/'

t.test('a node\'s credentials write only its own keys', async t => {
  const etcd = await startEtcd(t)
  const connect = async (username?: string, password?: string): Promise<StoreClient> => {
    const c = await connectStore(resolveEtcdOptions({ endpoints: etcd.endpoint, username, password }))
    t.teardown(() => c.close())
    return c
  }
  const anon = await connect()
  await writeConfig(anon, prefix, config)
  const [root, admin] = await authEnable(anon, prefix)
  if (root === undefined || admin === undefined) throw new Error('authEnable returned no credentials')
  anon.close()

  // Auth is on: without credentials nothing is readable.
  const stranger = await connect()
  const denied = await storeCall('read config', async () => await stranger.get(configKey(prefix)).string()).then(() => undefined, (e: unknown) => e)
  // etcd 3.4 answers an anonymous call with "user name is empty" (INVALID_ARGUMENT), not PERMISSION_DENIED.
  t.ok(isStoreError(denied), `no credentials → refused (${String(denied)})`)

  const rootClient = await connect('root', root.password)
  const a = await nodeCredentials(rootClient, prefix, 'node-a')
  const b = await nodeCredentials(rootClient, prefix, 'node-b')
  t.equal(a.user, 'podmesh-node-node-a')

  // Re-running replaces the password: the old one stops working.
  const stale = await connect(a.user, a.password)
  const a2 = await nodeCredentials(rootClient, prefix, 'node-a')
  t.not(a2.password, a.password)
  const staleErr = await stale.get(configKey(prefix)).string().then(() => undefined, (e: unknown) => e)
  t.ok(staleErr instanceof Error, 'the replaced password is refused')

  const clientA = await connect(a2.user, a2.password)
  const clientB = await connect(b.user, b.password)

  // Everything a node does on its own keys works.
  t.strictSame(await readConfig(clientA, prefix), config, 'a node reads the config')
  const seen: string[] = []
  const watcher = await clientA.watch().prefix(prefix).create()
  t.teardown(async () => await watcher.cancel())
  watcher.on('put', kv => { seen.push(kv.key.toString()) })
  const leaseA = await acquireNode({ client: clientA, prefix, config, name: 'node-a', stateDir: await tempDir(t, 'a'), record: fields(1) })
  const leaseB = await acquireNode({ client: clientB, prefix, config, name: 'node-b', stateDir: await tempDir(t, 'b'), record: fields(2) })
  t.teardown(async () => { await leaseA.close().catch(() => {}); await leaseB.close().catch(() => {}) })
  await leaseA.publish({ mtu: 1380 })
  t.equal(JSON.parse(await clientB.get(nodeKey(prefix, 'node-a')).string() ?? '{}').mtu, 1380, 'node-a published; node-b reads it')
  const statusA = await publishStatus(clientA, prefix, 'node-a', { appliedGeneration: 1, peers: {} })
  t.teardown(async () => await statusA.close().catch(() => {}))
  await waitFor('node-a\'s watch to see node-b\'s record', () => seen.includes(nodeKey(prefix, 'node-b')))
  // Someone deletes node-a's record: node-a writes it again with its own credentials.
  await rootClient.delete().key(nodeKey(prefix, 'node-a'))
  t.equal(await leaseA.reassert(), 'reasserted')

  // Every write to another node's keys, or to the config, is refused by etcd.
  const bRecord = await clientA.get(nodeKey(prefix, 'node-b')).string()
  const refused = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    const e = await storeCall(what, fn).then(() => undefined, (err: unknown) => err)
    t.ok(isStoreError(e) && e.kind === 'permission', `${what}: permission denied (${String((e as StoreError | undefined)?.message)})`)
  }
  await refused('overwrite node-b\'s record', async () => await clientA.put(nodeKey(prefix, 'node-b')).value('{"v":1,"name":"node-b"}'))
  await refused('delete node-b\'s record', async () => await clientA.delete().key(nodeKey(prefix, 'node-b')))
  await refused('write node-b\'s status', async () => await clientA.put(statusKey(prefix, 'node-b')).value('{"v":1}'))
  await refused('write a record under a longer name', async () => await clientA.put(nodeKey(prefix, 'node-ab')).value('{"v":1}'))
  await refused('delete every record', async () => await clientA.delete().prefix(`${prefix}nodes/`))
  await refused('overwrite the config', async () => await clientA.put(configKey(prefix)).value('{"v":1}'))
  await refused('write outside the prefix', async () => await clientA.put('/podmesh/other/nodes/node-a').value('{}'))
  // Revoking node-b's lease would delete node-b's record: etcd checks write access to every key on it.
  const leaseIdB = (await clientA.get(nodeKey(prefix, 'node-b')).exec()).kvs[0]?.lease
  t.ok(leaseIdB !== undefined && leaseIdB !== '0', 'node-b\'s record hangs on a lease')
  await refused('revoke node-b\'s lease', async () => await clientA.leaseClient.leaseRevoke({ ID: leaseIdB ?? '0' }))
  t.equal(await clientA.get(nodeKey(prefix, 'node-b')).string(), bRecord, 'node-b\'s record is untouched')

  // What etcd cannot forbid (ranges, no create-only): deleting another node's subnet lease,
  // which its owner writes back (re-assertion), and even taking it over, which the owner can
  // only detect (docs/operations.md, "Least privilege").
  const cidrB = leaseB.podCIDRs[0] ?? ''
  const valueB = await clientA.get(subnetKey(prefix, cidrB)).string()
  await clientA.delete().key(subnetKey(prefix, cidrB))
  t.equal(await clientA.get(subnetKey(prefix, cidrB)).string(), null, 'a node can delete another node\'s subnet lease')
  t.equal(await leaseB.reassert(), 'reasserted', 'the owner writes it again')
  t.equal(await rootClient.get(subnetKey(prefix, cidrB)).string(), valueB)
  await clientA.put(subnetKey(prefix, cidrB)).value((valueB ?? '').replace('"node-b"', '"node-a"'))
  await t.rejects(leaseB.reassert(), { code: 'ELEASE', problem: 'subnetTaken' }, 'a node can overwrite another node\'s subnet lease: the owner finds it taken')
  await rootClient.put(subnetKey(prefix, cidrB)).value(valueB ?? '')

  // Services: a node reads them (its rules derive from them) and writes none of their keys; it
  // writes its own pods/<node>/ folder only.
  const web = await addService(rootClient, prefix, { name: 'web', type: 'NodePort', ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector: { app: 'web' } })
  t.strictSame(await listServices(clientA, prefix, key => t.fail(`nothing to skip: ${key}`)), [web], 'a node lists the services')
  t.strictSame(await getService(clientA, prefix, 'web'), web, 'a node reads a service')
  const nodePort = web.ports[0]?.nodePort ?? 0
  await refused('add a service', async () => await addService(clientA, prefix, { name: 'evil', ports: [{ protocol: 'tcp', port: 80, targetPort: 80 }], selector: { app: 'evil' } }))
  await refused('overwrite a service', async () => await clientA.put(serviceKey(prefix, 'web')).value('{"v":1}'))
  await refused('remove a service', async () => await removeService(clientA, prefix, 'web'))
  await refused('delete every service', async () => await clientA.delete().prefix(`${prefix}services/`))
  await refused('take a cluster IP', async () => await clientA.put(serviceIpKey(prefix, '10.96.0.99')).value('{"v":1,"service":"evil"}'))
  await refused('free a cluster IP', async () => await clientA.delete().key(serviceIpKey(prefix, web.clusterIPs[0] ?? '')))
  await refused('take a node port', async () => await clientA.put(nodePortKey(prefix, 'udp', 30001)).value('{"v":1,"service":"evil"}'))
  await refused('free a node port', async () => await clientA.delete().key(nodePortKey(prefix, 'tcp', nodePort)))
  t.strictSame(await getService(rootClient, prefix, 'web'), web, 'the service is untouched')
  await clientA.put(`${nodePodsPrefix(prefix, 'node-a')}c1`).value('{"v":1}')
  t.equal(await rootClient.get(`${nodePodsPrefix(prefix, 'node-a')}c1`).string(), '{"v":1}', 'a node writes its own pods')
  await refused('write another node\'s pods', async () => await clientA.put(`${nodePodsPrefix(prefix, 'node-b')}c1`).value('{"v":1}'))
  await refused('write pods under a longer name', async () => await clientA.put(`${nodePodsPrefix(prefix, 'node-ab')}c1`).value('{"v":1}'))
  await refused('write a pod key outside any node folder', async () => await clientA.put(`${prefix}pods/node-a`).value('{"v":1}'))
  await clientA.delete().key(`${nodePodsPrefix(prefix, 'node-a')}c1`)

  // Decommission with its own credentials: record, subnets, status gone, lease revoked.
  await statusA.close()
  await leaseA.release()
  t.equal(await rootClient.get(nodeKey(prefix, 'node-a')).string(), null, 'node-a removed itself')
  t.not(await rootClient.get(nodeKey(prefix, 'node-b')).string(), null)

  // podmesh-admin (the routine podmeshctl user) has the whole prefix, and nothing outside it.
  const adminClient = await connect(admin.user, admin.password)
  await adminClient.put(nodeKey(prefix, 'node-b')).value(bRecord ?? '')
  const outside = await storeCall('admin writes outside the prefix', async () => await adminClient.put('/elsewhere').value('x')).then(() => undefined, (e: unknown) => e)
  t.ok(isStoreError(outside) && outside.kind === 'permission', 'admin is limited to the prefix')
})

// The service store against a real etcd: allocation of cluster IPs and NodePorts, refusals that
// name the holder and change nothing, removal of exactly the service's keys, and concurrent adds
// in a tiny range that never hand one IP or port to two services nor leave a key behind.
import t, { type Test } from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { writeConfig } from '../../lib/store/config-store'
import type { StoreClient } from '../../lib/store/client'
import { formatServiceClaim, parseServiceClaim, serviceIpKey, serviceKey } from '../../lib/store/service-keys'
import { type AddServiceRequest, type ServiceStoreProblem, addService, isServiceStoreError, removeService } from '../../lib/store/services'
import { getService, listServices } from '../../lib/store/service-read'
import type { ServiceSpec } from '../../lib/service/types'
import { parseServiceValue } from '../../lib/service/service-value'
import { startEtcd } from '../harness/etcd'
import { dump, testClient } from '../harness/store'

const pods = { ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' } }
const dualConfig = parseNetworkConfig({ v: 1, ...pods, services: { ipv4: '10.96.0.0/28', ipv6: 'fd00:10:96::/124', nodePortRange: { min: 30000, max: 30009 } } })
const req = (name: string, over: Partial<AddServiceRequest> = {}): AddServiceRequest => ({
  name, ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector: { app: name }, ...over
})

/** The refusal's problem (and message), with etcd's keys under the prefix unchanged. */
async function refused (t: Test, client: StoreClient, prefix: string, call: () => Promise<unknown>, problem: ServiceStoreProblem, says: RegExp): Promise<void> {
  const before = await dump(client, prefix)
  const err = await call().then(() => undefined, (e: unknown) => e)
  t.ok(isServiceStoreError(err) && err.problem === problem, `${problem}: ${String((err as Error | undefined)?.message)}`)
  t.match((err as Error | undefined)?.message, says)
  t.strictSame(await dump(client, prefix), before, `${problem}: etcd unchanged`)
}

/**
 * Every services/ value under the prefix passes the readers' validator (what podmeshd and every
 * podmeshctl command apply): the store never writes a service that its readers would skip.
 */
async function readable (t: Test, client: StoreClient, prefix: string, atLeast: number): Promise<void> {
  const folder = `${prefix}services/`
  const values = [...await dump(client, prefix)].filter(([k]) => k.startsWith(folder))
  t.ok(values.length >= atLeast, `${values.length} services written (at least ${atLeast})`)
  for (const [k, v] of values) {
    t.doesNotThrow(() => parseServiceValue(k, k.slice(folder.length), v), `${k} reads back through parseServiceValue`)
  }
}

t.test('services in etcd', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/svc/'

  await t.rejects(addService(client, prefix, req('web')), { code: 'ECONFIGSTORE', problem: 'missing' }, 'no config at all')
  await writeConfig(client, '/podmesh/old/', parseNetworkConfig({ v: 1, ...pods }))
  await refused(t, client, '/podmesh/old/', async () => await addService(client, '/podmesh/old/', req('web')), 'no-service-range', /no service ranges.*--service-cidr/)
  await writeConfig(client, prefix, dualConfig)

  const web = await addService(client, prefix, req('web', { clusterIPs: ['10.96.0.1'] }))
  t.equal(web.clusterIPs.length, 2, 'one cluster IP per family with a range')
  t.equal(web.clusterIPs[0], '10.96.0.1', 'the requested IPv4 address, first')
  t.match(web.clusterIPs[1], /^fd00:10:96::[1-9a-f]$/, 'a chosen IPv6 address, never the network address')
  t.strictSame(web, await getService(client, prefix, 'web'), 'stored as returned')
  const keys = await dump(client, prefix)
  t.equal(keys.get(serviceIpKey(prefix, '10.96.0.1')), formatServiceClaim('web'))
  t.equal(keys.get(serviceIpKey(prefix, web.clusterIPs[1] ?? '')), formatServiceClaim('web'))
  t.strictSame([...keys.keys()].filter(k => k.includes('/nodeports/')), [], 'a ClusterIP service holds no node port')

  await refused(t, client, prefix, async () => await addService(client, prefix, req('web')), 'exists', /service "web" already exists/)
  await refused(t, client, prefix, async () => await addService(client, prefix, req('api', { clusterIPs: ['10.96.0.1'] })), 'ip-taken', /cluster IP 10\.96\.0\.1 is taken by service "web"/)
  const takenErr = await addService(client, prefix, req('api', { clusterIPs: ['10.96.0.1'] })).catch((e: unknown) => e)
  t.equal((takenErr as { holder?: string }).holder, 'web', 'the holder is a field too')
  await refused(t, client, prefix, async () => await addService(client, prefix, req('api', { clusterIPs: ['10.96.0.0'] })), 'ip-out-of-range', /10\.96\.0\.0 is the network address of the service range 10\.96\.0\.0\/28 \(usable: 10\.96\.0\.1-10\.96\.0\.14\)/)
  await refused(t, client, prefix, async () => await addService(client, prefix, req('api', { clusterIPs: ['10.96.0.15'] })), 'ip-out-of-range', /is the broadcast address of/)
  await refused(t, client, prefix, async () => await addService(client, prefix, req('api', { clusterIPs: ['10.97.0.1'] })), 'ip-out-of-range', /10\.97\.0\.1 is outside the service range 10\.96\.0\.0\/28/)
  await refused(t, client, prefix, async () => await addService(client, prefix, req('api', { clusterIPs: ['fd00:10:96::'] })), 'ip-out-of-range', /network address/)
  await refused(t, client, prefix, async () => await addService(client, prefix, req('Api')), 'invalid', /not a valid service name/)

  // NodePorts: requested, chosen, per protocol.
  const np = await addService(client, prefix, req('np', {
    type: 'NodePort',
    ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30005 }, { protocol: 'tcp', port: 443, targetPort: 8443 }, { protocol: 'udp', port: 53, targetPort: 53, nodePort: 30005 }]
  }))
  t.strictSame(np.ports.map(p => p.nodePort !== undefined), [true, true, true])
  t.equal(np.ports[0]?.nodePort, 30005)
  t.not(np.ports[1]?.nodePort, 30005, 'a chosen port avoids the one this service asked for')
  t.ok((np.ports[1]?.nodePort ?? 0) >= 30000 && (np.ports[1]?.nodePort ?? 0) <= 30009)
  t.equal(np.ports[2]?.nodePort, 30005, 'udp 30005 is another key than tcp 30005')
  t.equal((await dump(client, prefix)).get(`${prefix}nodeports/udp-30005`), formatServiceClaim('np'))
  const npPort = (n: number): AddServiceRequest => req('np2', { type: 'NodePort', ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: n }] })
  await refused(t, client, prefix, async () => await addService(client, prefix, npPort(30005)), 'port-taken', /node port 30005\/tcp is taken by service "np"/)
  await refused(t, client, prefix, async () => await addService(client, prefix, npPort(30010)), 'port-out-of-range', /node port 30010\/tcp is outside the NodePort range 30000-30009/)
  await refused(t, client, prefix, async () => await addService(client, prefix, npPort(80)), 'port-out-of-range', /node port 80\/tcp/)
  // Fill the tcp range (8 left), then one more is refused.
  const fill = await addService(client, prefix, req('fill', { type: 'NodePort', ports: Array.from({ length: 8 }, (_, i) => ({ protocol: 'tcp' as const, port: 1000 + i, targetPort: 80 })) }))
  const tcpPorts = new Set([...np.ports, ...fill.ports].filter(p => p.protocol === 'tcp').map(p => p.nodePort))
  t.equal(tcpPorts.size, 10, 'ten distinct tcp node ports fill 30000-30009')
  await refused(t, client, prefix, async () => await addService(client, prefix, req('more', { type: 'NodePort' })), 'port-exhausted', /no free tcp node port in the NodePort range 30000-30009/)

  // list, show, a bad stored value skipped with why.
  await client.put(serviceKey(prefix, 'broken')).value('{"v":1,"name":"other"}')
  const skipped: Array<{ key: string, reason: string }> = []
  const listed = await listServices(client, prefix, (key, e) => skipped.push({ key, reason: e.message }))
  t.strictSame(listed.map(s => s.name), ['fill', 'np', 'web'])
  t.match(skipped, [{ key: serviceKey(prefix, 'broken'), reason: /name "other" does not match the key's "broken"/ }])
  await t.rejects(getService(client, prefix, 'broken'), { problem: 'bad-value' })
  await t.rejects(getService(client, prefix, 'nope'), { problem: 'not-found', message: 'no service named "nope" in cluster "svc"' })

  // remove: the service and exactly its claims; an unreadable service still goes.
  const removed = await removeService(client, prefix, 'np')
  t.strictSame(removed.claims.sort(), [`${np.clusterIPs[0] ?? ''}`, `${np.clusterIPs[1] ?? ''}`, ...np.ports.map(p => `${p.protocol}-${p.nodePort ?? 0}`)].sort())
  t.equal(removed.service, true)
  const after = await dump(client, prefix)
  t.equal([...after.values()].filter(v => parseServiceClaim(v) === 'np').length, 0, 'no claim of np is left')
  t.equal([...after.values()].filter(v => parseServiceClaim(v) === 'web').length, 2, 'web keeps its claims')
  await refused(t, client, prefix, async () => await removeService(client, prefix, 'np'), 'not-found', /no service named "np"/)
  t.strictSame(await removeService(client, prefix, 'broken'), { name: 'broken', service: true, claims: [] })
  // The freed port can be taken again.
  t.equal((await addService(client, prefix, npPort(30005))).ports[0]?.nodePort, 30005)
  await readable(t, client, prefix, 3)
})

t.test('a family without a service range cannot be asked for', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/v4/'
  await writeConfig(client, prefix, parseNetworkConfig({ v: 1, ...pods, services: { ipv4: '10.96.0.0/28' } }))
  await refused(t, client, prefix, async () => await addService(client, prefix, req('web', { clusterIPs: ['fd00:10:96::1'] })), 'no-service-range', /cluster IP fd00:10:96::1: the cluster has no IPv6 service range/)
  const web = await addService(client, prefix, req('web'))
  t.equal(web.clusterIPs.length, 1, 'IPv4 only')
  await readable(t, client, prefix, 1)
})

/** Every claim names a stored service that lists it, and every stored service's claims exist. */
function consistent (t: Test, keys: Map<string, string>, services: ServiceSpec[]): void {
  const byName = new Map(services.map(s => [s.name, s]))
  const claims = [...keys].filter(([k]) => k.includes('/serviceips/') || k.includes('/nodeports/'))
  for (const [k, v] of claims) {
    const s = byName.get(parseServiceClaim(v) ?? '')
    const suffix = k.slice(k.lastIndexOf('/') + 1)
    const listed = s !== undefined && (s.clusterIPs.includes(suffix) || s.ports.some(p => `${p.protocol}-${p.nodePort ?? 0}` === suffix))
    if (!listed) t.fail(`orphan claim ${k} = ${v}`)
  }
  const expected = services.reduce((n, s) => n + s.clusterIPs.length + s.ports.filter(p => p.nodePort !== undefined).length, 0)
  t.equal(claims.length, expected, 'as many claim keys as the services hold')
}

t.test('20 concurrent adds in a /28 and a /124: distinct addresses, clean failures, no orphan key', async t => {
  const etcd = await startEtcd(t)
  const clients = await Promise.all([0, 1, 2, 3].map(async () => await testClient(t, etcd.endpoints)))
  const client = clients[0] as StoreClient
  const prefix = '/podmesh/race/'
  await writeConfig(client, prefix, dualConfig)
  const results = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) =>
    await addService(clients[i % 4] as StoreClient, prefix, req(`svc-${i}`))))
  const ok = results.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const failed = results.flatMap(r => r.status === 'rejected' ? [r.reason as unknown] : [])
  t.ok(failed.every(e => isServiceStoreError(e) && (e.problem === 'ip-exhausted' || e.problem === 'conflict')), `failures are clean: ${failed.map(String).join('; ')}`)
  const v4 = ok.map(s => s.clusterIPs[0])
  const v6 = ok.map(s => s.clusterIPs[1])
  t.equal(new Set(v4).size, ok.length, 'no IPv4 address twice')
  t.equal(new Set(v6).size, ok.length, 'no IPv6 address twice')
  t.ok(ok.length <= 14, 'never more than the 14 usable IPv4 addresses')
  if (failed.every(e => isServiceStoreError(e) && e.problem === 'ip-exhausted')) t.equal(ok.length, 14, 'every usable address handed out before any refusal')
  t.ok(failed.some(e => isServiceStoreError(e) && e.problem === 'ip-exhausted'), 'the range ran out')
  const keys = await dump(client, prefix)
  const stored = await listServices(client, prefix, key => t.fail(`nothing to skip: ${key}`))
  t.strictSame(stored.map(s => s.name).sort(), ok.map(s => s.name).sort(), 'exactly the successful services are stored')
  consistent(t, keys, stored)
  await readable(t, client, prefix, 1)
})

t.test('20 concurrent NodePort adds for 10 node ports', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/np-race/'
  await writeConfig(client, prefix, parseNetworkConfig({ v: 1, ...pods, services: { ipv4: '10.96.0.0/20', nodePortRange: { min: 30000, max: 30009 } } }))
  const results = await Promise.allSettled(Array.from({ length: 20 }, async (_, i) =>
    await addService(client, prefix, req(`np-${i}`, { type: 'NodePort' }))))
  const ok = results.flatMap(r => r.status === 'fulfilled' ? [r.value] : [])
  const failed = results.flatMap(r => r.status === 'rejected' ? [r.reason as unknown] : [])
  t.ok(failed.every(e => isServiceStoreError(e) && (e.problem === 'port-exhausted' || e.problem === 'conflict')), `failures are clean: ${failed.map(String).join('; ')}`)
  t.equal(new Set(ok.map(s => s.ports[0]?.nodePort)).size, ok.length, 'no node port twice')
  t.ok(ok.length <= 10)
  consistent(t, await dump(client, prefix), await listServices(client, prefix, key => t.fail(`nothing to skip: ${key}`)))
  await readable(t, client, prefix, 1)
})

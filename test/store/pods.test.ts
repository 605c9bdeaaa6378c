// listPods and listServices against a real etcd: the valid values come back validated, in key
// order and across pages; every hostile key or value is reported once to onBad and skipped, and
// none of them hides the values after it.
import t from 'tap'
import { isKeyError } from '../../lib/store/keys'
import { listPods, POD_LIST_PAGE } from '../../lib/store/pods'
import { listServices, readService } from '../../lib/store/service-read'
import { podKey, podsPrefix, serviceKey, servicesPrefix } from '../../lib/store/service-keys'
import { isServiceValueError, podValueText, serviceValueText } from '../../lib/service/service-value'
import type { PodRecord, ServiceSpec } from '../../lib/service/types'
import { startEtcd } from '../harness/etcd'
import { testClient } from '../harness/store'

const P = '/podmesh/pods-test/'
const pod = (node: string, id: string, ip: string): PodRecord => ({ v: 1, id, node, ifname: 'eth0', ips: [ip], namespace: 'default', name: `pod-${id}`, labels: { app: 'web' } })
const service = (name: string): ServiceSpec => ({
  v: 1, name, type: 'ClusterIP', clusterIPs: ['10.96.0.10'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector: { app: 'web' }, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster'
})

t.test('pods and services listed from etcd, bad values skipped and reported', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)

  // More pods than one page holds, so the list crosses pages.
  const good: PodRecord[] = []
  for (let i = 0; i < POD_LIST_PAGE + 20; i++) good.push(pod(`node-${i % 3}`, `c${String(i).padStart(4, '0')}`, `10.244.${i % 3}.${(i % 250) + 2}`))
  for (const p of good) await client.put(podKey(P, p.node, p.id)).value(podValueText(p))
  const hostile: Array<[string, string, 'key' | 'value']> = [
    [`${podsPrefix(P)}node-1`, podValueText(pod('node-1', 'x', '10.244.1.99')), 'key'],
    [`${podsPrefix(P)}node-1/a/b`, '{}', 'key'],
    [`${podsPrefix(P)}NODE/abc`, '{}', 'key'],
    [`${podsPrefix(P)}node-1/zz-notjson`, '{"v":1,', 'value'],
    [`${podsPrefix(P)}node-1/zz-other-node`, podValueText(pod('node-2', 'zz-other-node', '10.244.2.99')), 'value'],
    [`${podsPrefix(P)}node-0/zz-proto`, '{"v":1,"id":"zz-proto","node":"node-0","ifname":"eth0","ips":["10.244.0.99"],"labels":{"__proto__":{"admin":"yes"}}}', 'value'],
    [`${podsPrefix(P)}node-2/zz-huge`, JSON.stringify({ ...pod('node-2', 'zz-huge', '10.244.2.98'), pad: 'x'.repeat(100_000) }), 'value'],
    [`${podsPrefix(P)}node-2/zz-loopback`, JSON.stringify(pod('node-2', 'zz-loopback', '127.0.0.1')), 'value']
  ]
  for (const [key, value] of hostile) await client.put(key).value(value)
  // Neighbours that are not pods: a longer prefix and another cluster.
  await client.put(`${P}podsx/node-1/abc`).value('{}')
  await client.put(`/podmesh/other/pods/node-1/abc`).value(podValueText(pod('node-1', 'abc', '10.244.1.2')))

  const bad: Array<{ key: string, error: unknown }> = []
  const pods = await listPods(client, P, (key, error) => bad.push({ key, error }))
  const byKey = (a: PodRecord, b: PodRecord): number => podKey(P, a.node, a.id) < podKey(P, b.node, b.id) ? -1 : 1
  t.strictSame(pods, [...good].sort(byKey), 'every good pod, validated, in key order')
  t.strictSame(bad.map(b => b.key).sort(), hostile.map(h => h[0]).sort(), 'each bad one reported once')
  for (const [key, , kind] of hostile) {
    const b = bad.find(x => x.key === key)
    t.ok(kind === 'key' ? isKeyError(b?.error) : isServiceValueError(b?.error), `${key}: a ${kind} error`)
    t.match((b?.error as Error | undefined)?.message, key, `${key}: the message names the key`)
  }
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype was polluted')

  t.strictSame(await listServices(client, P, () => t.fail('no bad values in an empty directory')), [], 'no services yet')

  const services = ['db', 'web', 'api'].map(service)
  for (const s of services) await client.put(serviceKey(P, s.name)).value(serviceValueText(s))
  await client.put(`${servicesPrefix(P)}Bad_Name`).value('{}')
  await client.put(`${servicesPrefix(P)}cache`).value(JSON.stringify({ ...service('cache'), ports: [] }))
  await client.put(`${servicesPrefix(P)}dns`).value(serviceValueText(service('web')))
  await client.put(`${P}serviceips/10.96.0.10`).value('{"v":1,"service":"web"}')
  const badServices: Array<{ key: string, error: unknown }> = []
  const listed = await listServices(client, P, (key, error) => badServices.push({ key, error }))
  t.strictSame(listed.map(s => s.name), ['api', 'db', 'web'], 'valid services, in name order')
  t.strictSame(listed[2], service('web'))
  t.strictSame(badServices.map(b => b.key), [`${servicesPrefix(P)}Bad_Name`, `${servicesPrefix(P)}cache`, `${servicesPrefix(P)}dns`])
  t.ok(isKeyError(badServices[0]?.error), 'a bad name: a KeyError')
  t.match((badServices[1]?.error as Error).message, /ports must be an array of 1-256 ports/)
  t.match((badServices[2]?.error as Error).message, /name "web" does not match the key's "dns"/)

  t.strictSame(await readService(client, P, 'web'), service('web'), 'one service read')
  t.equal(await readService(client, P, 'nosuch'), undefined, 'none: undefined')
  await t.rejects(readService(client, P, 'cache'), { code: 'ESERVICEVALUE', key: `${servicesPrefix(P)}cache` }, 'a bad value throws')
  await t.rejects(readService(client, P, 'Bad_Name'), { code: 'EKEY' }, 'a name no service can have')
})

// ServiceInputs against a real etcd: load() reads services/ and pods/ at one revision, the watch
// from the next revision delivers each change and apply() folds it in — puts, deletes, a good
// value replaced by a bad one (forgotten, and reported), a bad one fixed — so that what it holds
// is always what a fresh load would read.
import t from 'tap'
import { ServiceInputs } from '../../lib/store/service-inputs'
import { watchServiceInputs } from '../../lib/store/service-watch'
import { podKey, serviceKey } from '../../lib/store/service-keys'
import { podValueText, serviceValueText } from '../../lib/service/service-value'
import type { PodRecord, ServiceSpec } from '../../lib/service/types'
import { startEtcd } from '../harness/etcd'
import { testClient, waitFor } from '../harness/store'

const P = '/podmesh/inputs-test/'
const pod = (node: string, id: string, ip: string): PodRecord => ({ v: 1, id, node, ifname: 'eth0', ips: [ip], labels: { app: 'web' } })
const service = (name: string, port = 80): ServiceSpec => ({
  v: 1, name, type: 'ClusterIP', clusterIPs: ['10.96.0.10'], ports: [{ protocol: 'tcp', port, targetPort: 8080 }], selector: { app: 'web' }, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster'
})
const names = (i: ServiceInputs): string[] => i.serviceList().map(s => `${s.name}:${s.ports[0]?.port ?? 0}`).sort()
const pods = (i: ServiceInputs): string[] => i.podList().map(p => `${p.node}/${p.id}`).sort()

t.test('service inputs: loaded at one revision, then followed change by change', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  await client.put(serviceKey(P, 'web')).value(serviceValueText(service('web')))
  await client.put(serviceKey(P, 'bad')).value('{"v":1,"name":"bad"}')
  await client.put(podKey(P, 'n1', 'a')).value(podValueText(pod('n1', 'a', '10.244.1.2')))
  await client.put(`${P}podsx/n1/a`).value('{}') // a neighbour prefix: not ours

  const inputs = new ServiceInputs(client, P)
  const revision = await inputs.load()
  t.strictSame(names(inputs), ['web:80'])
  t.strictSame(pods(inputs), ['n1/a'])
  t.strictSame([...inputs.skipped().keys()], [serviceKey(P, 'bad')], 'the bad service is remembered with why')
  t.match(inputs.skipped().get(serviceKey(P, 'bad')), /bad/)

  // Written after the load's revision, before the watch: the watch from revision + 1 still delivers it.
  await client.put(serviceKey(P, 'api')).value(serviceValueText(service('api', 443)))
  const stop = new AbortController()
  let batches = 0
  const watching = watchServiceInputs(client, P, { fromRevision: revision + 1n, signal: stop.signal, onChange: (_r, events) => { inputs.apply(events); batches++ } })
  t.teardown(async () => { stop.abort(); await watching })
  await waitFor('the write between load and watch', () => names(inputs).includes('api:443'), 10_000)

  await client.put(serviceKey(P, 'web')).value(serviceValueText(service('web', 8080)))
  await client.put(podKey(P, 'n2', 'b')).value(podValueText(pod('n2', 'b', '10.244.2.2')))
  await client.delete().key(podKey(P, 'n1', 'a'))
  await client.put(serviceKey(P, 'bad')).value(serviceValueText(service('bad')))
  await client.put(serviceKey(P, 'api')).value('{"v":1,"name":"api","ports":"all"}')
  await waitFor('every change folded in', () => names(inputs).join() === 'bad:80,web:8080' && pods(inputs).join() === 'n2/b', 10_000)
  t.strictSame([...inputs.skipped().keys()], [serviceKey(P, 'api')], 'the fixed one is no longer skipped; the good value turned bad is, and is gone from the list')
  t.ok(batches > 0)

  // What it holds is what a fresh load reads.
  const fresh = new ServiceInputs(client, P)
  await fresh.load()
  t.strictSame(names(inputs), names(fresh))
  t.strictSame(pods(inputs), pods(fresh))
  t.strictSame([...inputs.skipped()], [...fresh.skipped()])
})

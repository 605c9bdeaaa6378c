// The pod publisher against a real etcd and a real node lease (NodeLease, as podmeshd holds it):
// spool files in, pods/<node>/<id> keys out; a removed file's key gone; keys moved to the new
// lease when the old one is revoked (and gone with it meanwhile); a bad file reported once and
// skipped; a stray key deleted, another node's left alone; a pod spooled while etcd was down
// published on its return.
import t from 'tap'
import { join } from 'node:path'
import { writeFileSync } from 'node:fs'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import { listPods } from '../../lib/store/pods'
import { nodePodsPrefix, podKey } from '../../lib/store/service-keys'
import { PodPublisher } from '../../lib/daemon/pod-publisher'
import { removePodReport, writePodReport, type BadPodFile } from '../../lib/dataplane/pod-spool'
import { podRecordOf, type PodReport } from '../../lib/cni-plugin/pod-report'
import { startEtcd } from '../harness/etcd'
import { dump, fields, tempDir, testClient, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })
const prefix = '/podmesh/pods-test/'
const NODE = 'node-1'
const report = (id: string, app = 'web'): PodReport => ({ v: 1, id, ifname: 'eth0', ips: ['10.244.1.5'], namespace: 'shop', name: `pod-${id}`, labels: { app }, netns: `/var/run/netns/${id}` })

t.test('pod publisher', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints, { callTimeoutMs: 1000 })
  const spool = join(await tempDir(t, 'spool'), 'pods')
  const lease = await acquireNode({ client, prefix, config, name: NODE, stateDir: await tempDir(t), ttlSeconds: 60, record: fields(1), reacquireBackoff: { initialMs: 50, maxMs: 200 } })
  t.teardown(async () => await lease.close())

  const pub = new PodPublisher({ client, prefix, node: NODE, dir: spool, leaseId: () => lease.held ? lease.leaseId : undefined, coalesceMs: 20, resyncIntervalMs: 60_000, retryBackoff: { initialMs: 50, maxMs: 300 } })
  const bad: BadPodFile[] = []
  const failures: Error[] = []
  pub.on('badFile', b => bad.push(b))
  pub.on('failed', e => failures.push(e))
  t.teardown(async () => await pub.stop())

  /** pods/<node>/ as id → { record, lease }. */
  const pods = async (node = NODE): Promise<Map<string, { record: unknown, lease: string }>> => {
    const out = new Map<string, { record: unknown, lease: string }>()
    const dir = nodePodsPrefix(prefix, node)
    for (const kv of (await client.getAll().prefix(dir).exec()).kvs) out.set(kv.key.toString().slice(dir.length), { record: JSON.parse(kv.value.toString()), lease: kv.lease })
    return out
  }
  const ids = async (): Promise<string[]> => [...(await pods()).keys()].sort()

  // Two pods added before the daemon: published by the first pass.
  writePodReport(spool, report('a'))
  writePodReport(spool, report('b'))
  await client.put(podKey(prefix, NODE, 'stray')).value('{}')
  await client.put(podKey(prefix, 'node-2', 'x')).value('{"v":1}')
  pub.start()
  await waitFor('a and b published, the stray key deleted', async () => (await ids()).join() === 'a,b')
  const published = await pods()
  t.strictSame(published.get('a'), { record: podRecordOf(report('a'), NODE), lease: lease.leaseId }, 'the PodRecord, on the node\'s lease')
  t.strictSame(published.get('a')?.record, { v: 1, id: 'a', node: NODE, ifname: 'eth0', ips: ['10.244.1.5'], namespace: 'shop', name: 'pod-a', labels: { app: 'web' } }, 'the documented value')
  t.equal((await pods('node-2')).size, 1, 'another node\'s pods are left alone')
  const bads: string[] = []
  t.strictSame((await listPods(client, prefix, key => bads.push(key))).filter(p => p.node === NODE).map(p => p.id), ['a', 'b'], 'what every reader of pods/ lists')
  t.strictSame(bads, [podKey(prefix, 'node-2', 'x')], 'only the hand-made value of node-2 is bad to readers')

  // The spool watch: a new file, a changed file, a removed file.
  writePodReport(spool, report('c'))
  await waitFor('c published', async () => (await ids()).includes('c'))
  writePodReport(spool, report('b', 'db'))
  await waitFor('b\'s labels changed', async () => ((await pods()).get('b')?.record as { labels?: { app?: string } } | undefined)?.labels?.app === 'db')
  removePodReport(spool, 'a')
  await waitFor('a withdrawn', async () => (await ids()).join() === 'b,c')

  // A bad file: reported once, skipped, nothing else disturbed.
  writeFileSync(join(spool, 'broken.json'), '{"v":1,')
  await waitFor('the bad file reported', async () => bad.length > 0)
  t.match(bad, [{ file: join(spool, 'broken.json'), problem: /not JSON/ }])
  const again = await pub.sync()
  t.match(again, { waiting: false, pods: 2, put: [], deleted: [], bad: [{ file: join(spool, 'broken.json') }] }, 'a pass with nothing to do writes nothing')
  t.equal(bad.length, 1, 'the same bad file is reported once')
  t.strictSame(await ids(), ['b', 'c'])

  // The lease revoked (a decommission elsewhere, an etcd restore): the keys go with it; the node
  // lease is re-acquired and the publisher moves the pods onto the new one.
  const old = lease.leaseId
  const reacquired = new Promise(resolve => lease.once('reacquired', resolve))
  await client.leaseClient.leaseRevoke({ ID: old })
  t.strictSame(await ids(), [], 'revoking the lease removed the pods at once')
  t.equal(await lease.reassert(), 'lost', 'the daemon\'s registration pass notices (re-acquisition starts)')
  await reacquired
  t.not(lease.leaseId, old)
  pub.trigger() // as the daemon does on the lease's "reacquired"
  await waitFor('pods back on the new lease', async () => {
    const p = await pods()
    return [...p.keys()].sort().join() === 'b,c' && [...p.values()].every(v => v.lease === lease.leaseId)
  }, 15_000)

  // etcd down: the plugin's writes go on; the pod is published when etcd is back.
  await etcd.stop()
  writePodReport(spool, report('d'))
  await waitFor('a failed pass reported', async () => failures.length > 0, 15_000)
  await etcd.start()
  await waitFor('d published after etcd\'s return', async () => (await ids()).includes('d'), 30_000)
  t.strictSame(await ids(), ['b', 'c', 'd'])
  t.match(failures[0], { name: 'StoreError' }, 'the failure is the store\'s, emitted (not thrown, not logged)')

  // No lease: a pass waits and writes nothing.
  const none = new PodPublisher({ client, prefix, node: 'node-3', dir: spool, leaseId: () => undefined })
  t.strictSame(await none.sync(), { waiting: true, pods: 0, put: [], deleted: [], bad: [] })
  t.equal((await dump(client, nodePodsPrefix(prefix, 'node-3'))).size, 0)
})

// status/<node> under a storm of passes: writes are spaced, so etcd sees a bounded rate.
// Real etcd; the number of writes is the key's own version counter.
import t from 'tap'
import { StatusReport } from '../../lib/daemon/status-report'
import { statusKey } from '../../lib/store/keys'
import { startEtcd } from '../harness/etcd'
import { testClient, waitFor } from '../harness/store'

t.test('a storm of triggers writes status at most once per minGapMs', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/status-storm/'
  const report = new StatusReport({
    client, prefix, node: 'n1', intervalMs: 60_000, minGapMs: 200,
    snapshot: () => ({ generation: 1, revision: '1', degraded: false, ready: true, observed: undefined, nodes: [] }),
    onError: e => t.fail(String(e))
  })
  report.start()
  t.teardown(async () => await report.stop())
  const started = Date.now()
  // 500 triggers a second for one second, as after every pass of an unbounded storm.
  await new Promise<void>(resolve => {
    const tick = setInterval(() => {
      report.trigger()
      if (Date.now() - started >= 1000) { clearInterval(tick); resolve() }
    }, 2)
  })
  const seconds = (Date.now() - started) / 1000
  const version = async (): Promise<number> => Number((await client.get(statusKey(prefix, 'n1')).exec()).kvs[0]?.version ?? 0)
  await waitFor('the last spaced write', async () => await version() > 0, 5000)
  await new Promise(resolve => setTimeout(resolve, 300)) // a write already scheduled lands
  const writes = await version()
  t.ok(writes >= 2, `writes went on during the storm (${writes})`)
  t.ok(writes <= Math.ceil((seconds + 0.3) * 1000 / 200) + 1, `${writes} writes in ${seconds.toFixed(2)} s (bound: one per 200 ms)`)
})

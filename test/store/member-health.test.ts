// Leaving a silent etcd member: the rule (pure, with a clock), then against real etcd — a member
// whose connections go silent (a proxy frozen in front of it) is left by the watch and avoided by
// every call (the node watch and the config watch alike), and a member that lost its leader ends
// the watch instead of serving stale state.
import t from 'tap'
import * as etcd3 from 'etcd3'
import { ConnectionPool } from 'etcd3/lib/connection-pool'
import { MemberHealth, MemberAvoidedError, isMemberSilence, memberName } from '../../lib/store/member-health'
import { memberHealth } from '../../lib/store/client'
import { openWatchStream } from '../../lib/store/watch-stream'
import { NodeWatcher } from '../../lib/store/node-watch'
import { ConfigWatcher } from '../../lib/store/config-watch'
import { configKey } from '../../lib/store/keys'
import { acquireNode } from '../../lib/store/node-lease'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { startEtcd } from '../harness/etcd'
import { EtcdCluster } from '../harness/etcd-cluster'
import { startProxy } from '../harness/tcp-proxy'
import { fields, tempDir, testClient, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })

t.test('the rule: a suspect member is avoided for the quarantine, unless every member is suspect', async t => {
  let now = 1000
  const h = new MemberHealth(['http://a:2379', 'https://b:2379', 'c:2379'], 30_000, () => now)
  t.same(h.members, ['a:2379', 'b:2379', 'c:2379'])
  t.equal(memberName('https://b:2379'), 'b:2379')
  const seen: string[] = []
  h.on('suspect', s => seen.push(`${s.member} until ${s.untilMs}: ${s.why}`))
  t.notOk(h.isAvoided('a:2379'), 'nobody is avoided at first')
  h.suspect('http://a:2379', 'deadline exceeded')
  t.ok(h.isAvoided('a:2379'), 'a suspect member is avoided while another may answer')
  t.notOk(h.isAvoided('b:2379'))
  t.same(seen, ['a:2379 until 31000: deadline exceeded'])
  h.suspect('elsewhere:2379', 'not ours')
  t.equal(seen.length, 1, 'an endpoint that is not a member is ignored')
  now = 2000
  h.suspect('b:2379', 'x'); h.suspect('c:2379', 'x')
  t.notOk(h.isAvoided('a:2379'), 'all suspect: none avoided (trying them all is the least bad choice)')
  t.ok(h.isSuspect('a:2379'))
  now = 31_001
  t.notOk(h.isSuspect('a:2379'), 'the quarantine ends')
  t.ok(h.isAvoided('b:2379'), 'b is still in quarantine and a may answer')
  now = 32_001
  t.notOk(h.isAvoided('b:2379'), 'and then b is not avoided either')

  const single = new MemberHealth(['http://only:2379'], 30_000, () => now)
  single.suspect('only:2379', 'x')
  t.notOk(single.isAvoided('only:2379'), 'a single-member etcd is never avoided')
})

t.test('the policy declines an avoided member and suspects one that was silent', async t => {
  let now = 0
  const h = new MemberHealth(['a:1', 'b:1'], 1000, () => now)
  const a = h.policy('http://a:1')
  t.equal(await a.execute(async () => 'ok'), 'ok', 'a healthy member runs the call')
  await t.rejects(a.execute(async () => { throw new etcd3.GRPCDeadlineExceededError('deadline') }), { message: 'deadline' })
  t.ok(h.isSuspect('a:1'), 'a deadline makes the member suspect')
  let ran = false
  await t.rejects(a.execute(async () => { ran = true }), MemberAvoidedError)
  t.notOk(ran, 'an avoided member does not run the call (the pool moves on)')
  now = 1001
  const b = h.policy('b:1')
  await t.rejects(b.execute(async () => { throw new etcd3.EtcdPermissionDeniedError('permission denied') }))
  t.notOk(h.isSuspect('b:1'), 'a refusal of the request is not silence')
  const cases: Array<[unknown, boolean]> = [
    [new etcd3.GRPCDeadlineExceededError('x'), true],
    [new etcd3.GRPCUnavailableError('x'), true],
    [new etcd3.EtcdError('etcdserver: no leader'), true],
    [new etcd3.EtcdError('etcdserver: request timed out'), true],
    [new etcd3.EtcdError('etcdserver: leader changed'), true],
    [new etcd3.EtcdLeaseInvalidError('1'), false],
    [new etcd3.EtcdPermissionDeniedError('x'), false],
    [new Error('invalid key'), false],
    ['a string', false]
  ]
  for (const [e, want] of cases) t.equal(isMemberSilence(e), want, `${String(e)} → ${String(want)}`)
})

// A hang (a member that never came up) fails in two minutes, not at the file's timeout.
const BOUNDED = { timeout: 120_000 }

t.test('a member whose connections went silent: the watch leaves it, calls avoid it', BOUNDED, async t => {
  const etcd = await startEtcd(t)
  const good = await startProxy(t, etcd.clientPort)
  const silent = await startProxy(t, etcd.clientPort)
  // etcd3's pool tries members in a fixed order here (the last first): the silent one serves.
  ConnectionPool.deterministicOrder = true
  t.teardown(() => { ConnectionPool.deterministicOrder = false })
  // A call deadline well above what a call to the good member takes on a loaded machine, so that
  // "at once" and "into the silent member's deadline" stay apart (see the last check).
  const client = await testClient(t, [good.endpoint, silent.endpoint], { callTimeoutMs: 10_000 })
  const prefix = `/podmesh/silent-${process.pid}/`
  const w = new NodeWatcher({ client, prefix, config, probe: { idleMs: 300, timeoutMs: 500 } })
  t.teardown(async () => await w.stop())
  await w.start()
  // The config watch (default probe: 5 s idle, 3 s to answer) on the same client.
  await client.put(configKey(prefix)).value(JSON.stringify({ v: 1, ipv4: { cidr: '10.244.0.0/16' } }))
  const runs = (await client.get(configKey(prefix)).exec()).kvs[0]?.mod_revision ?? '0'
  const cw = new ConfigWatcher({ client, prefix, revision: runs })
  const configChanges: string[] = []
  cw.on('changed', c => configChanges.push(c.revision))
  cw.on('error', () => {})
  t.teardown(async () => await cw.stop())
  await cw.start()
  const opened = await openWatchStream(client)
  t.equal(opened.member, memberName(silent.endpoint), 'the watch stream is on the member that will go silent')
  t.ok(opened.requiresLeader, "etcd3's pool has the shape the require-leader stream needs")
  opened.stream.on('error', () => {})
  opened.stream.cancel()

  const writer = await testClient(t, [good.endpoint])
  const holds = [await acquireNode({ client: writer, prefix, config, name: 'n1', stateDir: await tempDir(t, 'n1'), record: fields(1) })]
  t.teardown(async () => { for (const h of holds) await h.close().catch(() => {}) })
  await waitFor('the watch to see n1', () => w.current().has('n1'), 10_000)

  silent.freeze()
  const frozenAt = Date.now()
  holds.push(await acquireNode({ client: writer, prefix, config, name: 'n2', stateDir: await tempDir(t, 'n2'), record: fields(2) }))
  // Without leaving the member the watch waits for grpc's keepalive (10 s + 5 s) at least.
  await waitFor('the watch to see n2 through the other member', () => w.current().has('n2'), 10_000)
  t.comment(`the watch saw n2 ${Date.now() - frozenAt} ms after its member went silent`)
  t.ok(memberHealth(client)?.isAvoided(silent.endpoint), 'the silent member is avoided')
  await writer.put(configKey(prefix)).value(JSON.stringify({ v: 1, ipv4: { cidr: '10.245.0.0/16' } }))
  await waitFor('the config watch to see the new config through the other member', () => configChanges.length > 0, 15_000)
  t.comment(`the config watch saw the new config ${Date.now() - frozenAt} ms after its member went silent`)
  const t0 = Date.now()
  await client.put(`${prefix}probe`).value('1')
  const ms = Date.now() - t0
  t.ok(ms < 8000, `a call goes to the other member at once (${ms} ms), not into the silent one's 10 s deadline`)
})

t.test('a member that lost its leader ends the watch (require leader), so it cannot serve stale state', BOUNDED, async t => {
  const cluster = await EtcdCluster.create(t)
  // The client knows one member only, and probes far too rarely to notice anything itself.
  const client = await testClient(t, [cluster.endpoint(0)])
  const w = new NodeWatcher({ client, prefix: '/podmesh/noleader/', config, probe: { idleMs: 120_000, timeoutMs: 120_000 } })
  t.teardown(async () => await w.stop())
  const degraded: string[] = []
  w.on('degraded', e => degraded.push(e.message))
  await w.start()
  t.comment('watching member 0; killing the other two')
  await cluster.kill(1)
  await cluster.kill(2)
  const cutAt = Date.now()
  // etcd ends require-leader streams after ~3 election timeouts without a leader.
  await waitFor('the watch to report it lost etcd', () => degraded.length > 0, 20_000)
  t.comment(`degraded ${Date.now() - cutAt} ms after the member lost its peers: ${degraded[0] ?? ''}`)
  t.match(degraded[0], /no leader|unavailable|timed out/i)
})

// NodeWatcher against a real etcd: initial list, coalescing, hostile values, lease expiry,
// outage and resume, compaction while disconnected, etcd restored from a snapshot or replaced,
// and the cost of listing 5,000 records.
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import type { NetworkConfig } from '../../lib/config/network'
import type { NodeRecord } from '../../lib/store/node-record'
import type { StoreClient } from '../../lib/store/client'
import { type EtcdRestore, type NodeChange, type Rejection, NodeWatcher } from '../../lib/store/node-watch'
import { acquireNode } from '../../lib/store/node-lease'
import { removeNode } from '../../lib/store/node-remove'
import { nodeKey, subnetKey } from '../../lib/store/keys'
import { formatSubnetValue } from '../../lib/store/subnet-value'
import { RecordError } from '../../lib/store/record-error'
import { type Teardownable, startEtcd } from '../harness/etcd'
import { startProxy } from '../harness/tcp-proxy'
import { fields, tempDir, testClient, testKey, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })

const record = (name: string, i: number, cidr = `10.244.${i}.0/24`): NodeRecord => ({
  v: 1, name, generation: 0, endpoint: `192.0.2.${i + 1}:51820`, publicKey: testKey(i), podCIDRs: [cidr], mtu: 1420
})

/** Writes a record and its subnet lease the way a node does (one txn), without an etcd lease. */
async function putNode (client: StoreClient, prefix: string, rec: NodeRecord): Promise<void> {
  await client.kv.txn({
    success: [
      ...rec.podCIDRs.map(c => ({ request_put: { key: Buffer.from(subnetKey(prefix, c)), value: Buffer.from(formatSubnetValue(rec.name)) } })),
      { request_put: { key: Buffer.from(nodeKey(prefix, rec.name)), value: Buffer.from(JSON.stringify(rec)) } }
    ]
  })
}

interface Watch {
  w: NodeWatcher
  changes: NodeChange[]
  rejected: Rejection[]
  events: string[]
  /** A position in the change log: take it before the action whose change you wait for. */
  mark: () => number
  /** Resolves with the first change since `from` (a mark) that satisfies `pred`. */
  next: (from: number, pred: (c: NodeChange) => boolean, what: string, timeoutMs?: number) => Promise<NodeChange>
}

function watch (t: Teardownable, client: StoreClient, prefix: string, cfg: NetworkConfig = config, coalesceMs = 10): Watch {
  const w = new NodeWatcher({ client, prefix, config: cfg, coalesceMs, backoff: { initialMs: 50, maxMs: 500 } })
  const changes: NodeChange[] = []
  const rejected: Rejection[] = []
  const events: string[] = []
  w.on('change', c => { changes.push(c); events.push('change') })
  w.on('rejected', r => { rejected.push(r); events.push('rejected') })
  w.on('degraded', () => events.push('degraded'))
  w.on('recovered', () => events.push('recovered'))
  w.on('restored', () => events.push('restored'))
  t.teardown(async () => await w.stop())
  const next = async (from: number, pred: (c: NodeChange) => boolean, what: string, timeoutMs = 10_000): Promise<NodeChange> => {
    let found: NodeChange | undefined
    await waitFor(what, () => { found = changes.slice(from).find(pred); return found !== undefined }, timeoutMs)
    return found as NodeChange
  }
  return { w, changes, rejected, events, mark: () => changes.length, next }
}

t.test('node watch', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)

  t.test('initial list, then coalesced changes with the full map', async t => {
    const prefix = '/podmesh/basic/'
    await putNode(client, prefix, record('a', 1))
    await putNode(client, prefix, record('b', 2))
    const x = watch(t, client, prefix)
    await x.w.start()
    t.equal(x.changes.length, 1)
    t.strictSame(x.changes[0]?.added.sort(), ['a', 'b'])
    t.equal(x.changes[0]?.relisted, false)
    t.strictSame([...x.w.current().keys()].sort(), ['a', 'b'])

    // A burst of 20 writes arrives as few coalesced changes, each carrying the whole map.
    const before = x.mark()
    await Promise.all(Array.from({ length: 20 }, async (_, i) => await putNode(client, prefix, record(`n${i}`, 10 + i))))
    const last = await x.next(before, c => c.nodes.size === 22, 'all 22 nodes')
    t.ok(x.changes.length - before < 20, `coalesced: ${x.changes.length - before} change events for 20 writes`)
    t.ok(last.nodes.get('n19') !== undefined)
    t.ok(BigInt(last.revision) > BigInt(x.changes[0]?.revision ?? '0'))

    let m = x.mark()
    await putNode(client, prefix, { ...record('a', 1), generation: 1, mtu: 1400 })
    t.strictSame((await x.next(m, c => c.updated.includes('a'), 'update of a')).nodes.get('a')?.mtu, 1400)
    m = x.mark()
    await removeNode(client, prefix, 'b')
    const rm = await x.next(m, c => c.removed.includes('b'), 'removal of b')
    t.strictSame(rm.added, [])
    t.notOk(rm.nodes.has('b'))
    t.strictSame(x.rejected, [])
  })

  t.test('bad and hostile values are rejected and skipped; the watch keeps going', async t => {
    const prefix = '/podmesh/hostile/'
    await putNode(client, prefix, record('victim', 1))
    const x = watch(t, client, prefix)
    await x.w.start()
    const m0 = x.mark()
    const put = async (key: string, value: string): Promise<void> => { await client.put(`${prefix}${key}`).value(value) }

    // Claims the victim's subnet (its record is well-formed, but subnets/ says it is not its own).
    await put('nodes/thief', JSON.stringify(record('thief', 2, '10.244.1.0/24')))
    // Claims a subnet nobody leased.
    await put('nodes/squatter', JSON.stringify(record('squatter', 3)))
    await put('nodes/garbage', '{"v":1,')
    await put('nodes/liar', JSON.stringify(record('someone-else', 4)))
    await put('nodes/Bad_Name', JSON.stringify(record('bad', 5)))
    await put('subnets/10.244.6.0-24', 'not json')
    await put('nodes/unreadable-lease', JSON.stringify(record('unreadable-lease', 6)))
    await put('nodes/outside', JSON.stringify(record('outside', 7, '10.99.7.0/24')))
    await put('subnets/10.244.7.1-24', formatSubnetValue('outside'))
    // And one good node after all that.
    await putNode(client, prefix, record('good', 8))

    await x.next(m0, c => c.nodes.has('good'), 'the good node')
    await waitFor('all rejections', () => x.rejected.length >= 9, 5000)
    const by = (key: string): Rejection | undefined => x.rejected.find(r => r.key === `${prefix}${key}`)
    t.match(by('nodes/thief'), { error: { problem: 'owner' }, reason: /claims subnet 10\.244\.1\.0\/24, which is leased to node victim/ })
    t.match(by('nodes/squatter'), { error: { problem: 'owner' }, reason: /claims subnet 10\.244\.3\.0\/24, which has no lease/ })
    t.match(by('nodes/garbage'), { error: { problem: 'json' } })
    t.match(by('nodes/liar'), { error: { problem: 'name' }, reason: /does not match the key's node name "liar"/ })
    t.match(by('nodes/Bad_Name'), { error: { code: 'EKEY' }, reason: /not a valid node name/ })
    t.match(by('subnets/10.244.6.0-24'), { error: { problem: 'json' } })
    t.match(by('nodes/unreadable-lease'), { error: { problem: 'owner' }, reason: /whose lease is unreadable/ })
    t.match(by('nodes/outside'), { error: { problem: 'podCIDRs' }, reason: /outside the cluster range/ })
    t.match(by('subnets/10.244.7.1-24'), { error: { code: 'EKEY' }, reason: /host bits/ })
    t.strictSame([...x.w.current().keys()].sort(), ['good', 'victim'])
    t.equal(x.w.current().get('victim')?.endpoint, '192.0.2.2:51820', 'the victim is untouched')

    // Each bad value is reported once, not on every later change.
    const count = x.rejected.length
    const m1 = x.mark()
    await putNode(client, prefix, record('good2', 9))
    await x.next(m1, c => c.nodes.has('good2'), 'good2')
    t.equal(x.rejected.length, count)

    // The squatter gets a real lease for its subnet: now it is accepted.
    const m2 = x.mark()
    await client.put(subnetKey(prefix, '10.244.3.0/24')).value(formatSubnetValue('squatter'))
    await x.next(m2, c => c.added.includes('squatter'), 'squatter accepted once it holds the lease')
  })

  t.test('lease expiry removes a stopped node; the watch reports it', async t => {
    const prefix = '/podmesh/expiry/'
    const x = watch(t, client, prefix)
    await x.w.start()
    const stateDir = await tempDir(t)
    const m = x.mark()
    const h = await acquireNode({ client, prefix, config, name: 'mortal', stateDir, ttlSeconds: 2, record: fields(1) })
    t.teardown(async () => await h.close())
    const cidr = h.podCIDRs[0] ?? ''
    await x.next(m, c => c.added.includes('mortal'), 'mortal added')
    const stoppedAt = Date.now()
    const m2 = x.mark()
    await h.close()
    const rm = await x.next(m2, c => c.removed.includes('mortal'), 'mortal removed at TTL', 10_000)
    const took = Date.now() - stoppedAt
    t.ok(took >= 1000, `keys outlived the stop until the TTL (${took} ms)`)
    t.notOk(rm.nodes.has('mortal'))
    t.equal(await client.get(subnetKey(prefix, cidr)).string(), null, 'subnet key gone too')
  })

  t.test('compaction while disconnected: re-list reports exactly what changed', async t => {
    const prefix = '/podmesh/compact/'
    const proxy = await startProxy(t, etcd.clientPort)
    const viaProxy = await testClient(t, [proxy.endpoint], { callTimeoutMs: 1000 })
    for (const [n, i] of [['a', 1], ['b', 2], ['c', 3]] as const) await putNode(client, prefix, record(n, i))
    const x = watch(t, viaProxy, prefix)
    await x.w.start()
    t.strictSame([...x.w.current().keys()].sort(), ['a', 'b', 'c'])

    proxy.pause()
    await waitFor('degraded', () => x.events.includes('degraded'))
    const seen = x.changes.length
    await removeNode(client, prefix, 'b')
    await putNode(client, prefix, record('d', 4))
    await putNode(client, prefix, { ...record('c', 3), generation: 1, endpoint: '192.0.2.33:51820' })
    // Churn a key that is not a node: it must not show up as a change.
    await client.put(subnetKey(prefix, '10.244.9.0/24')).value(formatSubnetValue('nobody'))
    const rev = (await client.get(`${prefix}nodes/`).exec()).header.revision
    await etcd.compact(rev)
    t.equal(x.changes.length, seen, 'nothing seen while disconnected')

    const m = x.mark()
    proxy.resume()
    const c = await x.next(m, ch => ch.relisted, 're-list after compaction', 15_000)
    t.strictSame(c.added, ['d'])
    t.strictSame(c.removed, ['b'])
    t.strictSame(c.updated, ['c'])
    t.strictSame([...c.nodes.keys()].sort(), ['a', 'c', 'd'])
    t.equal(c.nodes.get('c')?.endpoint, '192.0.2.33:51820')
    t.ok(BigInt(c.revision) >= BigInt(rev))
    t.ok(x.events.indexOf('recovered') > x.events.indexOf('degraded'), 'recovered after degraded')

    // And the watch goes on from the re-list.
    const m2 = x.mark()
    await putNode(client, prefix, record('e', 5))
    const e = await x.next(m2, ch => ch.added.includes('e'), 'e after the re-list')
    t.equal(e.relisted, false)
  })

  t.test('5,000 records: one list, every record valid and accepted', async t => {
    const prefix = '/podmesh/scale/'
    const big = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.0.0.0/8' } })
    const N = 5000
    for (let from = 0; from < N; from += 60) {
      const success = []
      for (let i = from; i < Math.min(N, from + 60); i++) {
        // Unique keys: records sharing one would be skipped by the claim rule.
        const rec = { ...record(`node-${i}`, i % 250, `10.${i >> 8}.${i & 255}.0/24`), publicKey: testKey(i), location: `rack-${i % 40}` }
        success.push({ request_put: { key: Buffer.from(subnetKey(prefix, rec.podCIDRs[0] ?? '')), value: Buffer.from(formatSubnetValue(rec.name)) } })
        success.push({ request_put: { key: Buffer.from(nodeKey(prefix, rec.name)), value: Buffer.from(JSON.stringify(rec)) } })
      }
      await client.kv.txn({ success })
    }
    const x = watch(t, client, prefix, big)
    const started = process.hrtime.bigint()
    await x.w.start()
    const ms = Number(process.hrtime.bigint() - started) / 1e6
    t.equal(x.w.current().size, N)
    t.equal(x.rejected.length, 0)
    // A figure, not an assertion: speed is bench:scale's to measure (its list row), never a test's.
    t.comment(`initial list + parse of ${N} records: ${ms.toFixed(0)} ms`)
  })

  t.test('300 MiB of junk values: the list pages past them, skips them unparsed, and finds the nodes', async t => {
    const prefix = '/podmesh/junk/'
    await putNode(client, prefix, record('before', 1))
    // 300 values of 1 MiB (etcd's default request limit is 1.5 MiB), sorted between real records.
    // One unpaged read of this is over grpc's 256 MiB receive limit: the list would fail forever.
    const junk = Buffer.alloc(1024 * 1024, 'x')
    for (let from = 0; from < 300; from += 4) {
      await Promise.all(Array.from({ length: 4 }, async (_, j) => await client.put(`${prefix}nodes/junk-${String(from + j).padStart(3, '0')}`).value(junk)))
    }
    await putNode(client, prefix, record('zafter', 2))
    const x = watch(t, client, prefix)
    await x.w.start()
    t.strictSame([...x.w.current().keys()].sort(), ['before', 'zafter'])
    await waitFor('300 rejections', () => x.rejected.length >= 300, 10_000)
    t.ok(x.rejected.every(r => r.error instanceof RecordError && r.error.problem === 'tooLarge'), 'each rejected as too large')
    await client.delete().prefix(prefix)
  })
})

t.test('etcd outage: degraded, then recovered and resumed without a re-list', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints, { callTimeoutMs: 1000 })
  const prefix = '/podmesh/outage/'
  await putNode(client, prefix, record('a', 1))
  const x = watch(t, client, prefix)
  await x.w.start()
  await etcd.stop()
  await waitFor('degraded', () => x.events.includes('degraded'))
  t.ok(x.w.isDegraded)
  t.strictSame([...x.w.current().keys()], ['a'], 'the last known state is kept')
  await etcd.start()
  await waitFor('recovered', () => x.events.includes('recovered'), 15_000)
  const m = x.mark()
  await putNode(client, prefix, record('b', 2))
  const c = await x.next(m, ch => ch.added.includes('b'), 'b after the outage')
  t.equal(c.relisted, false, 'resumed from the last revision, no re-list')
  t.strictSame(x.events.filter(e => e !== 'change'), ['degraded', 'recovered'])
  t.strictSame([...c.nodes.keys()].sort(), ['a', 'b'])
})

t.test('etcd restored from an older snapshot: reported, re-listed, and watched from the restored revision', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints, { callTimeoutMs: 1000 })
  const prefix = '/podmesh/restore/'
  await putNode(client, prefix, record('a', 1))
  await putNode(client, prefix, record('b', 2))
  const snap = `${await tempDir(t, 'snap')}/etcd.db`
  await etcd.snapshot(snap)
  const x = watch(t, client, prefix)
  const restores: EtcdRestore[] = []
  x.w.on('restored', r => restores.push(r))
  await x.w.start()
  // After the snapshot: c joins, a leaves, and enough writes that the revision is well past the snapshot's.
  await putNode(client, prefix, record('c', 3))
  await removeNode(client, prefix, 'a')
  for (let i = 0; i < 5; i++) await putNode(client, prefix, { ...record('b', 2), generation: i + 1 })
  await x.next(x.mark() - 1, ch => ch.nodes.has('c') && !ch.nodes.has('a'), 'c in, a out')
  const before = BigInt(x.w.currentRevision)
  const m = x.mark()
  await etcd.restore(snap)
  const c = await x.next(m, ch => ch.relisted, 'the re-list after the restore', 15_000)
  t.strictSame([...c.nodes.keys()].sort(), ['a', 'b'], 'the snapshot\'s view: a is back, c is gone')
  t.strictSame(c.added, ['a'])
  t.strictSame(c.removed, ['c'])
  t.equal(restores.length, 1)
  t.ok(BigInt(restores[0]?.previousRevision ?? '0') >= before, 'the revision the watcher had reached')
  t.ok(BigInt(restores[0]?.revision ?? '0') < before, 'etcd answered with an older revision')
  t.equal(restores[0]?.clusterChanged, false)
  t.ok(x.events.indexOf('restored') < x.events.lastIndexOf('change'), 'restored is reported before the re-listed snapshot')
  // Writes after the restore reuse revisions the watcher saw before: it must see them anyway.
  const m2 = x.mark()
  await putNode(client, prefix, record('d', 4))
  const d = await x.next(m2, ch => ch.added.includes('d'), 'd written after the restore')
  t.strictSame([...d.nodes.keys()].sort(), ['a', 'b', 'd'])
})

t.test('etcd replaced by an empty one: reported and re-listed, nothing is left of the old view', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints, { callTimeoutMs: 1000 })
  const prefix = '/podmesh/replaced/'
  await putNode(client, prefix, record('a', 1))
  const x = watch(t, client, prefix)
  await x.w.start()
  const m = x.mark()
  await etcd.restore()
  const c = await x.next(m, ch => ch.relisted, 'the re-list after the replacement', 15_000)
  t.strictSame(c.removed, ['a'])
  t.equal(c.nodes.size, 0)
  t.ok(x.events.includes('restored'))
})

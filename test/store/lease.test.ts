// Subnet leasing against a real etcd: concurrency, exhaustion, restarts, requests, publishing,
// takeover, decommission, re-acquisition after the lease is revoked, and re-assertion of keys
// that someone else deleted or altered.
import t from 'tap'
import { rm } from 'node:fs/promises'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { type NodeLease, acquireNode } from '../../lib/store/node-lease'
import { isLeaseError } from '../../lib/store/lease-error'
import { nodeKey, subnetKey } from '../../lib/store/keys'
import { loadSubnetState } from '../../lib/store/subnet-state'
import { startEtcd } from '../harness/etcd'
import { dump, fields, tempDir, testClient, waitFor } from '../harness/store'

const wide = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' } })
const narrow = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.250.0.0/21' } })

t.test('lease', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const holds: NodeLease[] = []
  t.teardown(async () => { for (const h of holds) await h.close().catch(() => {}) })
  const acquire = async (o: Omit<Parameters<typeof acquireNode>[0], 'client'> & { client?: Parameters<typeof acquireNode>[0]['client'] }): Promise<NodeLease> => {
    const h = await acquireNode({ client, ...o })
    holds.push(h)
    return h
  }

  /** Checks etcd under `prefix`: every subnet key's owner lists it, every record's subnets are its own. */
  const consistent = async (prefix: string): Promise<{ nodes: number, subnets: number }> => {
    const kv = await dump(client, prefix)
    let nodes = 0; let subnets = 0
    for (const [key, value] of kv) {
      const v = JSON.parse(value) as { node?: string, name?: string, podCIDRs?: string[] }
      if (key.startsWith(`${prefix}subnets/`)) {
        subnets++
        const owner = kv.get(nodeKey(prefix, v.node ?? ''))
        t.ok(owner !== undefined, `${key} has its node record`)
        if (owner === undefined) continue
        const cidr = key.slice(`${prefix}subnets/`.length).replace(/-(\d+)$/, '/$1')
        t.ok((JSON.parse(owner) as { podCIDRs: string[] }).podCIDRs.includes(cidr), `${key} is listed in its owner's record`)
      } else if (key.startsWith(`${prefix}nodes/`)) {
        nodes++
        for (const c of v.podCIDRs ?? []) t.equal(JSON.parse(kv.get(subnetKey(prefix, c)) ?? '{}').node, v.name, `${c} is leased to ${v.name ?? ''}`)
      }
    }
    return { nodes, subnets }
  }

  t.test('50 nodes allocating concurrently get 50 distinct subnets per family', async t => {
    const prefix = '/podmesh/concurrent/'
    // Separate clients, like separate machines.
    const clients = await Promise.all(Array.from({ length: 10 }, async () => await testClient(t, etcd.endpoints)))
    const dirs = await Promise.all(Array.from({ length: 50 }, async (_, i) => await tempDir(t, `n${i}`)))
    const got = await Promise.all(dirs.map(async (stateDir, i) => await acquire({
      client: clients[i % clients.length], prefix, config: wide, name: `node-${i}`, stateDir, record: fields(i)
    })))
    const v4 = new Set(got.map(h => h.podCIDRs[0]))
    const v6 = new Set(got.map(h => h.podCIDRs[1]))
    t.equal(v4.size, 50)
    t.equal(v6.size, 50)
    t.strictSame(await consistent(prefix), { nodes: 50, subnets: 100 })
    t.strictSame((await loadSubnetState(dirs[7] ?? '', 'node-7'))?.podCIDRs, got[7]?.podCIDRs, 'state saved on disk')
  })

  t.test('a range of 8 subnets: 8 nodes succeed, the rest fail with exhaustion, nothing half-made', async t => {
    const prefix = '/podmesh/narrow/'
    const leasesBefore = (await client.leaseClient.leaseLeases()).leases.length
    const dirs = await Promise.all(Array.from({ length: 50 }, async (_, i) => await tempDir(t, `x${i}`)))
    const results = await Promise.allSettled(dirs.map(async (stateDir, i) => await acquire({
      prefix, config: narrow, name: `node-${i}`, stateDir, record: fields(i)
    })))
    const ok = results.filter(r => r.status === 'fulfilled')
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    t.equal(ok.length, 8)
    t.equal(failed.length, 42)
    const exhausted = failed.filter(f => isLeaseError(f.reason) && f.reason.problem === 'exhausted' &&
      /no free \/24 subnet left in IPv4 range 10\.250\.0\.0\/21: all 8 are leased/.test(f.reason.message))
    t.equal(exhausted.length, 42, 'every loser got the exhaustion error naming the range')
    t.strictSame(await consistent(prefix), { nodes: 8, subnets: 8 })
    // The losers' leases were revoked: only the 8 winners added one.
    await waitFor('losing leases revoked', async () => (await client.leaseClient.leaseLeases()).leases.length === leasesBefore + 8)
  })

  t.test('restart keeps the subnet: from the state dir, and from etcd when the state is wiped', async t => {
    const prefix = '/podmesh/restart/'
    const stateDir = await tempDir(t)
    const first = await acquire({ prefix, config: wide, name: 'r1', stateDir, record: fields(1) })
    const cidrs = first.podCIDRs
    const gen = first.record.generation
    await first.close()

    // Another node joins meanwhile; it must not get r1's subnet.
    const other = await acquire({ prefix, config: wide, name: 'r2', stateDir: await tempDir(t), record: fields(2) })
    t.notSame(other.podCIDRs, cidrs)

    const second = await acquire({ prefix, config: wide, name: 'r1', stateDir, record: fields(1) })
    t.strictSame(second.podCIDRs, cidrs, 'same subnets from the state dir')
    t.ok(second.record.generation > gen, 'generation grows')
    t.equal(second.record.since, first.record.since, 'since is kept')
    t.not(second.leaseId, first.leaseId)
    // The keys moved to the new lease (the old one may expire without taking them along).
    const kv = await client.get(nodeKey(prefix, 'r1')).exec()
    t.equal(BigInt(kv.kvs[0]?.lease ?? 0).toString(), BigInt(second.leaseId).toString())
    const sk = await client.get(subnetKey(prefix, cidrs[0] ?? '')).exec()
    t.equal(BigInt(sk.kvs[0]?.lease ?? 0).toString(), BigInt(second.leaseId).toString())
    await second.close()

    await rm(stateDir, { recursive: true, force: true })
    const third = await acquire({ prefix, config: wide, name: 'r1', stateDir, record: fields(1) })
    t.strictSame(third.podCIDRs, cidrs, 'same subnets from etcd after the state was wiped')
    t.strictSame((await loadSubnetState(stateDir, 'r1'))?.podCIDRs, cidrs, 'state written again')

    // Decommissioned, then started again with its state: the remembered subnet is free, so it is reused.
    await third.release()
    t.equal((await dump(client, prefix)).size, 3, 'only r2 is left (record + 2 subnets)')
    const fourth = await acquire({ prefix, config: wide, name: 'r1', stateDir, record: fields(1) })
    t.strictSame(fourth.podCIDRs, cidrs)
  })

  t.test('requested subnets', async t => {
    const prefix = '/podmesh/requested/'
    const a = await acquire({ prefix, config: wide, name: 'a', stateDir: await tempDir(t), requested: ['10.244.77.0/24'], record: fields(1) })
    t.equal(a.podCIDRs[0], '10.244.77.0/24')
    const err = await acquire({ prefix, config: wide, name: 'b', stateDir: await tempDir(t), requested: ['10.244.77.0/24'], record: fields(2) }).catch((e: unknown) => e)
    t.ok(isLeaseError(err) && err.problem === 'requestedTaken')
    t.match((err as Error).message, /requested subnet 10\.244\.77\.0\/24 is held by node a/)
    const bad = await acquire({ prefix, config: wide, name: 'c', stateDir: await tempDir(t), requested: ['10.99.0.0/24'], record: fields(3) }).catch((e: unknown) => e)
    t.ok(isLeaseError(bad) && bad.problem === 'requestedInvalid')
    t.equal((await dump(client, prefix)).size, 3, 'failed requests left nothing behind')
  })

  t.test('invalid record input is refused before anything is written', async t => {
    const prefix = '/podmesh/invalid/'
    const err = await acquire({ prefix, config: wide, name: 'a', stateDir: await tempDir(t), record: { endpoint: 'nope', mtu: 1420 } }).catch((e: unknown) => e)
    t.match(err, { code: 'ERECORD', problem: 'endpoint' })
    t.equal((await dump(client, prefix)).size, 0)
  })

  t.test('publish updates in place, only when something changed', async t => {
    const prefix = '/podmesh/publish/'
    const h = await acquire({ prefix, config: wide, name: 'p', stateDir: await tempDir(t), record: fields(1) })
    const rev0 = (await client.get(nodeKey(prefix, 'p')).exec()).kvs[0]?.mod_revision
    const same = await h.publish({ endpoint: fields(1).endpoint })
    t.equal(same.generation, h.record.generation)
    t.equal((await client.get(nodeKey(prefix, 'p')).exec()).kvs[0]?.mod_revision, rev0, 'no write for no change')
    const g = h.record.generation
    const rec = await h.publish({ endpoint: '192.0.2.200:51820', location: 'site-b' })
    t.equal(rec.generation, g + 1)
    t.equal(rec.location, 'site-b')
    const stored = JSON.parse(await client.get(nodeKey(prefix, 'p')).string() ?? '{}') as Record<string, unknown>
    t.strictSame(stored, rec)
    const noLoc = await h.publish({ location: undefined })
    t.notOk('location' in noLoc, 'undefined removes an optional field')
    await t.rejects(h.publish({ mtu: 100 }), { code: 'ERECORD', problem: 'mtu' })
    t.equal(h.record.generation, g + 2, 'a rejected publish changes nothing')
  })

  t.test('publish after an operator removed the node writes the record back', async t => {
    const prefix = '/podmesh/removed/'
    const h = await acquire({ prefix, config: wide, name: 'gone', stateDir: await tempDir(t), record: fields(1) })
    const cidrs = h.podCIDRs
    await client.delete().key(nodeKey(prefix, 'gone'))
    const rec = await h.publish({ mtu: 1400 })
    t.equal(rec.mtu, 1400)
    t.strictSame(rec.podCIDRs, cidrs, 'same subnets')
    const stored = await client.get(nodeKey(prefix, 'gone')).exec()
    t.strictSame(JSON.parse(stored.kvs[0]?.value.toString() ?? '{}'), rec)
    t.equal(stored.kvs[0]?.lease, h.leaseId, 'on the node\'s own lease')
  })

  t.test('re-assertion: intact keys are left alone, deleted or altered ones are written again', async t => {
    const prefix = '/podmesh/reassert/'
    const h = await acquire({ prefix, config: wide, name: 'own', stateDir: await tempDir(t), record: fields(2) })
    const cidrs = h.podCIDRs
    const keys = [nodeKey(prefix, 'own'), ...cidrs.map(c => subnetKey(prefix, c))]
    const revisions = async (): Promise<string[]> => await Promise.all(keys.map(async k => (await client.get(k).exec()).kvs[0]?.mod_revision ?? 'absent'))
    const onLease = async (): Promise<string[]> => await Promise.all(keys.map(async k => (await client.get(k).exec()).kvs[0]?.lease ?? 'absent'))

    const before = await revisions()
    t.equal(await h.reassert(), 'intact')
    t.strictSame(await revisions(), before, 'an intact check writes nothing')

    const g = h.record.generation
    await client.delete().prefix(`${prefix}nodes/`)
    await client.delete().prefix(`${prefix}subnets/`)
    t.equal(await h.reassert(), 'reasserted')
    t.strictSame(h.podCIDRs, cidrs, 'the same subnets')
    t.equal(h.record.generation, g + 1, 'the generation grows')
    t.strictSame(await onLease(), keys.map(() => h.leaseId), 'record and subnet leases are back, on the node\'s lease')
    t.equal(await h.reassert(), 'intact')

    // Altered by hand: another endpoint, and no lease (it would outlive the node).
    const forged = { ...h.record, endpoint: '192.0.2.250:51820' }
    await client.put(nodeKey(prefix, 'own')).value(JSON.stringify(forged))
    t.equal(await h.reassert(), 'reasserted')
    const stored = JSON.parse(await client.get(nodeKey(prefix, 'own')).string() ?? '{}') as { endpoint?: string }
    t.equal(stored.endpoint, fields(2).endpoint, 'the node\'s own endpoint again')
    t.strictSame(await onLease(), keys.map(() => h.leaseId))

    // A subnet key moved onto another lease (e.g. a restore) is not intact either.
    const other = await client.lease(60, { autoKeepAlive: false }).grant()
    await client.put(subnetKey(prefix, cidrs[0] as string)).value(JSON.stringify({ v: 1, node: 'own' })).lease(other)
    t.equal(await h.reassert(), 'reasserted')
    t.strictSame(await onLease(), keys.map(() => h.leaseId))

    const forced = await revisions()
    t.equal(await h.reassert({ force: true }), 'reasserted', 'force writes intact keys')
    t.not((await revisions())[0], forced[0], 'the record has a new mod revision')
  })

  t.test('re-assertion refuses a subnet that another node took meanwhile', async t => {
    const prefix = '/podmesh/taken/'
    const h = await acquire({ prefix, config: wide, name: 'victim', stateDir: await tempDir(t), record: fields(3) })
    const cidr = h.podCIDRs[0] as string
    await client.delete().prefix(`${prefix}nodes/`)
    await client.delete().prefix(`${prefix}subnets/`)
    await client.put(subnetKey(prefix, cidr)).value(JSON.stringify({ v: 1, node: 'intruder' }))
    await t.rejects(h.reassert(), { code: 'ELEASE', problem: 'subnetTaken', message: new RegExp(`${cidr.replace(/[./]/g, '\\$&')}.*intruder`) })
    t.equal((await client.get(nodeKey(prefix, 'victim')).exec()).kvs.length, 0, 'nothing half-written')
    await client.delete().key(subnetKey(prefix, cidr))
    t.equal(await h.reassert(), 'reasserted', 'taken back once the intruder lets go')
    t.strictSame(h.podCIDRs[0], cidr)
  })

  t.test('re-assertion after the lease was revoked hands over to re-acquisition', async t => {
    const prefix = '/podmesh/revoked-check/'
    const h = await acquire({ prefix, config: wide, name: 'phoenix', stateDir: await tempDir(t), record: fields(4) })
    const reacquired = new Promise(resolve => h.once('reacquired', resolve))
    await client.leaseClient.leaseRevoke({ ID: h.leaseId })
    t.equal(await h.reassert(), 'lost')
    await reacquired
    t.equal(await h.reassert(), 'intact')
  })

  t.test('a revoked lease is re-acquired with the same subnets', async t => {
    const prefix = '/podmesh/revoked/'
    const h = await acquire({ prefix, config: wide, name: 'phoenix', stateDir: await tempDir(t), ttlSeconds: 5, record: fields(1) })
    const cidrs = h.podCIDRs
    const events: string[] = []
    h.on('lost', () => events.push('lost'))
    const reacquired = new Promise(resolve => h.once('reacquired', resolve))
    const oldLease = h.leaseId
    await client.leaseClient.leaseRevoke({ ID: oldLease })
    t.equal((await dump(client, prefix)).size, 0, 'revoking deleted the keys')
    // Published before or after the node noticed: either way it is written with the keys.
    const pending = await h.publish({ endpoint: '192.0.2.77:51820' })
    t.equal(pending.endpoint, '192.0.2.77:51820')
    await reacquired
    t.strictSame(events, ['lost'])
    t.not(h.leaseId, oldLease)
    t.strictSame(h.podCIDRs, cidrs)
    t.ok(h.held)
    const kv = await dump(client, prefix)
    t.equal(kv.size, 3, 'record and both subnet keys are back')
    const stored = JSON.parse(kv.get(nodeKey(prefix, 'phoenix')) ?? '{}') as { podCIDRs?: string[], endpoint?: string }
    t.strictSame(stored.podCIDRs, cidrs)
    t.equal(stored.endpoint, '192.0.2.77:51820')
  })
})

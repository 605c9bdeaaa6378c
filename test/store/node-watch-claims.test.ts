// NodeWatcher's claim rule against a real etcd: a record reusing another's public key or VXLAN
// MAC (with a valid subnet lease) is left out of the snapshot and reported once; the earlier
// record by create revision wins whatever the names and later updates; a watcher that starts
// later (a list, not events) reaches the same verdict.
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import type { NodeRecord } from '../../lib/store/node-record'
import type { StoreClient } from '../../lib/store/client'
import { type NodeChange, NodeWatcher } from '../../lib/store/node-watch'
import type { Conflict } from '../../lib/mesh/claims'
import { removeNode } from '../../lib/store/node-remove'
import { nodeKey, subnetKey } from '../../lib/store/keys'
import { formatSubnetValue } from '../../lib/store/subnet-value'
import { type Teardownable, startEtcd } from '../harness/etcd'
import { testClient, testKey, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, backend: { type: 'vxlan' } })

const record = (name: string, i: number, over: Partial<NodeRecord> = {}): NodeRecord => ({
  v: 1, name, generation: 0, endpoint: `192.0.2.${i + 1}:51820`, publicKey: testKey(i), podCIDRs: [`10.244.${i}.0/24`],
  vxlan: { mac: `02:00:00:00:00:${i.toString(16).padStart(2, '0')}` }, mtu: 1420, ...over
})

/** Records with their subnet leases, all in one transaction (so they share one create revision). */
async function put (client: StoreClient, prefix: string, ...recs: NodeRecord[]): Promise<void> {
  await client.kv.txn({
    success: recs.flatMap(rec => [
      ...rec.podCIDRs.map(c => ({ request_put: { key: Buffer.from(subnetKey(prefix, c)), value: Buffer.from(formatSubnetValue(rec.name)) } })),
      { request_put: { key: Buffer.from(nodeKey(prefix, rec.name)), value: Buffer.from(JSON.stringify(rec)) } }
    ])
  })
}

interface Watch { w: NodeWatcher, changes: NodeChange[], conflicts: Conflict[], next: (pred: (c: NodeChange) => boolean, what: string) => Promise<NodeChange> }

async function watch (t: Teardownable, client: StoreClient, prefix: string): Promise<Watch> {
  const w = new NodeWatcher({ client, prefix, config, coalesceMs: 5 })
  const changes: NodeChange[] = []
  const conflicts: Conflict[] = []
  w.on('change', c => changes.push(c))
  w.on('conflict', c => conflicts.push(c))
  t.teardown(async () => await w.stop())
  await w.start()
  let seen = changes.length
  const next = async (pred: (c: NodeChange) => boolean, what: string): Promise<NodeChange> => {
    let found: NodeChange | undefined
    await waitFor(what, () => {
      const i = changes.findIndex((c, j) => j >= seen && pred(c))
      if (i >= 0) { found = changes[i]; seen = i + 1 }
      return found !== undefined
    })
    return found as NodeChange
  }
  return { w, changes, conflicts, next }
}

t.test('claims in the watch', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)

  t.test('a reused public key or MAC: skipped, reported once, the holder untouched', async t => {
    const prefix = '/podmesh/reuse/'
    await put(client, prefix, record('victim', 1))
    await put(client, prefix, record('bystander', 2))
    const x = await watch(t, client, prefix)
    const victim = x.w.current().get('victim')

    // The impostor's record alone changes no accepted record: the change is emitted for the conflict.
    await put(client, prefix, record('impostor', 3, { publicKey: testKey(1) }))
    const c1 = await x.next(c => c.conflicts.length > 0, 'the key conflict')
    t.strictSame(c1.conflicts, [{ node: 'impostor', holder: 'victim', what: 'publicKey', value: testKey(1) }])
    t.strictSame([c1.added, c1.updated, c1.removed], [[], [], []])
    t.strictSame([...c1.nodes.keys()].sort(), ['bystander', 'victim'])
    t.equal(c1.nodes.get('victim'), victim, 'the holder\'s record is the same object: nothing to re-plan')

    await put(client, prefix, record('mimic', 4, { vxlan: { mac: '02:00:00:00:00:02' } }))
    const c2 = await x.next(c => c.conflicts.length === 2, 'the MAC conflict')
    t.strictSame(c2.conflicts.find(c => c.node === 'mimic'), { node: 'mimic', holder: 'bystander', what: 'vxlanMac', value: '02:00:00:00:00:02' })

    // Unrelated churn: the conflicts stay in every change but are reported once.
    await put(client, prefix, record('late', 5))
    const c3 = await x.next(c => c.added.includes('late'), 'an unrelated join')
    t.equal(c3.conflicts.length, 2)
    t.strictSame(x.conflicts.map(c => c.node), ['impostor', 'mimic'], 'one conflict event each')
    t.strictSame(x.w.currentConflicts(), c3.conflicts)

    // The impostor goes: the conflict goes with it, in a change of its own.
    await removeNode(client, prefix, 'impostor')
    const c4 = await x.next(c => c.conflicts.length === 1, 'the key conflict cleared')
    t.strictSame(c4.conflicts.map(c => c.node), ['mimic'])
    t.strictSame([c4.added, c4.removed], [[], []])
  })

  t.test('the earlier record wins by create revision, whatever the names and later updates', async t => {
    const prefix = '/podmesh/age/'
    await put(client, prefix, record('zeta', 1))
    await put(client, prefix, record('alpha', 2, { publicKey: testKey(1) }))
    const x = await watch(t, client, prefix)
    t.strictSame([...x.w.current().keys()], ['zeta'])
    t.strictSame(x.w.currentConflicts(), [{ node: 'alpha', holder: 'zeta', what: 'publicKey', value: testKey(1) }])

    // An update keeps the create revision: zeta is still the earlier claimant.
    await put(client, prefix, { ...record('zeta', 1), generation: 1, mtu: 1400 })
    const u = await x.next(c => c.updated.includes('zeta'), 'zeta updated')
    t.strictSame([...u.nodes.keys()], ['zeta'])
    t.equal(u.conflicts[0]?.holder, 'zeta')

    // The holder leaves: the skipped record is accepted now, and the conflict is gone.
    await removeNode(client, prefix, 'zeta')
    const r = await x.next(c => c.removed.includes('zeta'), 'zeta removed')
    t.strictSame(r.added, ['alpha'])
    t.strictSame(r.conflicts, [])
  })

  t.test('one transaction, one create revision: the name decides, on a live watch and on a fresh list alike', async t => {
    const prefix = '/podmesh/tie/'
    const x = await watch(t, client, prefix)
    await put(client, prefix, record('node-b', 1), record('node-a', 2, { vxlan: { mac: '02:00:00:00:00:01' } }))
    const c = await x.next(c => c.conflicts.length > 0, 'the tie')
    t.strictSame(c.conflicts, [{ node: 'node-b', holder: 'node-a', what: 'vxlanMac', value: '02:00:00:00:00:01' }])
    t.strictSame([...c.nodes.keys()], ['node-a'])
    const later = await watch(t, client, prefix)
    t.strictSame(later.w.currentConflicts(), c.conflicts, 'a watcher started later lists the same verdict')
    t.strictSame([...later.w.current().keys()], ['node-a'])
    t.strictSame(later.conflicts, c.conflicts, 'and reports it on its first snapshot')
  })
})

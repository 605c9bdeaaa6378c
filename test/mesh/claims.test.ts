// The claim rule: a public key, VXLAN MAC or pod CIDR claimed by two records belongs to the
// earlier claimant (create revision, ties by name); the later record is skipped and reported.
import t from 'tap'
import { ClaimLedger, type Claimant, type Conflict, ownClaimConflicts, resolveClaims } from '../../lib/mesh/claims'
import type { NodeRecord } from '../../lib/store/node-record'
import { key, node, nodes } from '../fixtures/mesh'

/** The fixture's four nodes created at revisions 10, 20, 30, 40. */
const at = (rev: number, rec: NodeRecord): Claimant<NodeRecord> => ({ record: rec, createRevision: BigInt(rev) })
const cluster = nodes.map((n, i) => at(10 * (i + 1), n))

const cases: Array<{ name: string, claimants: Array<Claimant<NodeRecord>>, accepted: string[], conflicts: Conflict[] }> = [
  {
    name: 'distinct claims: everyone is accepted, earliest claimant first',
    claimants: [...cluster].reverse(),
    accepted: ['node-1', 'node-2', 'node-3', 'node-4'],
    conflicts: []
  },
  {
    name: 'a later record reusing a public key is skipped',
    claimants: [...cluster, at(50, node(9, { publicKey: key('A') }))],
    accepted: ['node-1', 'node-2', 'node-3', 'node-4'],
    conflicts: [{ node: 'node-9', holder: 'node-1', what: 'publicKey', value: key('A') }]
  },
  {
    name: 'the earlier record wins even when its name sorts later',
    claimants: [at(5, node(9, { publicKey: key('A') })), ...cluster],
    accepted: ['node-9', 'node-2', 'node-3', 'node-4'],
    conflicts: [{ node: 'node-1', holder: 'node-9', what: 'publicKey', value: key('A') }]
  },
  {
    name: 'same create revision (one transaction): the name breaks the tie',
    claimants: [at(7, node(9, { publicKey: key('Q') })), at(7, node(8, { publicKey: key('Q') }))],
    accepted: ['node-8'],
    conflicts: [{ node: 'node-9', holder: 'node-8', what: 'publicKey', value: key('Q') }]
  },
  {
    name: 'a reused VXLAN MAC is skipped',
    claimants: [...cluster, at(50, node(9, { vxlan: { mac: '02:00:00:00:00:02' } }))],
    accepted: ['node-1', 'node-2', 'node-3', 'node-4'],
    conflicts: [{ node: 'node-9', holder: 'node-2', what: 'vxlanMac', value: '02:00:00:00:00:02' }]
  },
  {
    name: 'MACs that differ only in case are one MAC',
    claimants: [at(1, node(1, { vxlan: { mac: '02:aa:00:00:00:01' } })), at(2, node(2, { vxlan: { mac: '02:AA:00:00:00:01' } }))],
    accepted: ['node-1'],
    conflicts: [{ node: 'node-2', holder: 'node-1', what: 'vxlanMac', value: '02:aa:00:00:00:01' }]
  },
  {
    name: 'an equal pod CIDR is a conflict',
    claimants: [...cluster, at(50, node(9, { podCIDRs: ['10.244.3.0/24', 'fd00:10:244:9::/64'] }))],
    accepted: ['node-1', 'node-2', 'node-3', 'node-4'],
    conflicts: [{ node: 'node-9', holder: 'node-3', what: 'podCIDR', value: '10.244.3.0/24' }]
  },
  {
    name: 'a later wider prefix containing an accepted subnet is a conflict',
    claimants: [...cluster, at(50, node(9, { podCIDRs: ['10.244.0.0/22', 'fd00:10:244:9::/64'] }))],
    accepted: ['node-1', 'node-2', 'node-3', 'node-4'],
    conflicts: [{ node: 'node-9', holder: 'node-1', what: 'podCIDR', value: '10.244.0.0/22' }]
  },
  {
    name: 'a later narrower prefix inside an accepted subnet is a conflict (IPv6)',
    claimants: [...cluster, at(50, node(9, { podCIDRs: ['10.244.9.0/24', 'fd00:10:244:4:8000::/80'] }))],
    accepted: ['node-1', 'node-2', 'node-3', 'node-4'],
    conflicts: [{ node: 'node-9', holder: 'node-4', what: 'podCIDR', value: 'fd00:10:244:4:8000::/80' }]
  },
  {
    name: 'adjacent prefixes do not overlap',
    claimants: [...cluster, at(50, node(9, { podCIDRs: ['10.244.8.0/23', 'fd00:10:244:9::/64'] }))],
    accepted: ['node-1', 'node-2', 'node-3', 'node-4', 'node-9'],
    conflicts: []
  },
  {
    name: 'a record sharing key and MAC with two nodes is reported for each',
    claimants: [...cluster, at(50, node(9, { publicKey: key('C'), vxlan: { mac: '02:00:00:00:00:04' } }))],
    accepted: ['node-1', 'node-2', 'node-3', 'node-4'],
    conflicts: [
      { node: 'node-9', holder: 'node-3', what: 'publicKey', value: key('C') },
      { node: 'node-9', holder: 'node-4', what: 'vxlanMac', value: '02:00:00:00:00:04' }
    ]
  },
  {
    name: 'a skipped record claims nothing: a third colliding only with it is accepted',
    claimants: [
      at(1, node(1)),
      at(2, node(2, { publicKey: key('A'), vxlan: { mac: '02:00:00:00:00:77' } })),
      at(3, node(3, { vxlan: { mac: '02:00:00:00:00:77' } }))
    ],
    accepted: ['node-1', 'node-3'],
    conflicts: [{ node: 'node-2', holder: 'node-1', what: 'publicKey', value: key('A') }]
  },
  {
    name: 'absent keys and MACs claim nothing',
    claimants: [at(1, node(1, { publicKey: undefined, vxlan: undefined })), at(2, node(2, { publicKey: undefined, vxlan: undefined }))],
    accepted: ['node-1', 'node-2'],
    conflicts: []
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const v = resolveClaims(c.claimants)
    t.strictSame(v.accepted.map(r => r.name), c.accepted)
    t.strictSame(v.conflicts, c.conflicts)
  })
}

t.test('the verdict does not depend on the input order', async t => {
  const claimants = [...cluster, at(50, node(9, { publicKey: key('B') })), at(60, node(8, { vxlan: { mac: '02:00:00:00:00:01' } }))]
  const want = resolveClaims(claimants)
  for (let i = 0; i < 10; i++) {
    const shuffled = [...claimants].sort(() => Math.random() - 0.5)
    t.strictSame(resolveClaims(shuffled), want)
  }
})

const ownCases: Array<{ name: string, self: { name: string, publicKey?: string, vxlanMac?: string }, claimants: Array<Claimant<NodeRecord>>, want: Conflict[] }> = [
  {
    name: 'first start of a node whose key another node holds (a cloned state dir)',
    self: { name: 'node-9', publicKey: key('A') },
    claimants: cluster,
    want: [{ node: 'node-9', holder: 'node-1', what: 'publicKey', value: key('A') }]
  },
  {
    name: 'first start with a fresh key: nothing held',
    self: { name: 'node-9', publicKey: key('Z'), vxlanMac: '02:00:00:00:00:99' },
    claimants: cluster,
    want: []
  },
  {
    name: 'restart of the earlier claimant: a later record with its key does not stop it',
    self: { name: 'node-1', publicKey: key('A') },
    claimants: [...cluster, at(50, node(9, { publicKey: key('A') }))],
    want: []
  },
  {
    name: 'own record lost its key to an earlier record (both started at once)',
    self: { name: 'node-9', publicKey: key('A') },
    claimants: [...cluster, at(50, node(9, { publicKey: key('A') }))],
    want: [{ node: 'node-9', holder: 'node-1', what: 'publicKey', value: key('A') }]
  },
  {
    name: 'a VXLAN MAC another node holds, in any case',
    self: { name: 'node-9', vxlanMac: '02:AA:00:00:00:03' },
    claimants: [...cluster, at(50, node(3, { name: 'node-5', publicKey: key('E'), vxlan: { mac: '02:aa:00:00:00:03' }, podCIDRs: ['10.244.5.0/24', 'fd00:10:244:5::/64'] }))],
    want: [{ node: 'node-9', holder: 'node-5', what: 'vxlanMac', value: '02:aa:00:00:00:03' }]
  },
  {
    name: 'a key held only by a skipped record is free',
    self: { name: 'node-9', publicKey: key('Q') },
    claimants: [...cluster, at(50, node(7, { publicKey: key('Q'), vxlan: { mac: '02:00:00:00:00:01' } }))],
    want: []
  }
]

for (const c of ownCases) {
  t.test(`own claims: ${c.name}`, async t => {
    t.strictSame(ownClaimConflicts(c.self, resolveClaims(c.claimants)), c.want)
  })
}

t.test('5,000 records: one verdict, no false conflicts', async t => {
  const many = Array.from({ length: 5000 }, (_, i) => {
    const b = Buffer.alloc(32); b.writeUInt32BE(i + 1)
    const mac = `02:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`
    return at(i + 1, node(1, { name: `n-${i}`, publicKey: b.toString('base64'), vxlan: { mac }, podCIDRs: [`10.${i >> 8}.${i & 255}.0/24`, `fd00:${i.toString(16)}::/64`] }))
  })
  const t0 = process.hrtime.bigint()
  const v = resolveClaims(many)
  t.comment(`resolveClaims over 5,000 records: ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms`)
  t.equal(v.accepted.length, 5000)
  t.strictSame(v.conflicts, [])
})

t.test('the ledger gives resolveClaims\'s verdict over a stream of changes', async t => {
  // A seeded stream of joins, leaves, claim changes and endpoint-only updates, with clashing
  // keys, MACs and overlapping prefixes drawn from small pools so conflicts come and go.
  let seed = 42
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
  const ledger = new ClaimLedger<NodeRecord>()
  let revision = 100
  const live = new Map<string, Claimant<NodeRecord>>()
  const fresh = (name: string): NodeRecord => ({
    ...node(1),
    name,
    publicKey: key('ABCDEFGHIJKL'[rnd(12)] as string),
    vxlan: { mac: `02:00:00:00:00:0${rnd(9)}` },
    podCIDRs: rnd(10) === 0 ? [`10.${rnd(3)}.0.0/16`] : [`10.${rnd(3)}.${rnd(12)}.0/24`]
  })
  const sorted = (v: { accepted: NodeRecord[], conflicts: Conflict[] }): unknown =>
    ({ accepted: v.accepted.map(r => r.name).sort(), conflicts: v.conflicts.map(c => JSON.stringify(c)).sort() })
  let fastSteps = 0
  for (let step = 0; step < 400; step++) {
    const op = rnd(10)
    const names = [...live.keys()]
    if (op < 5 || names.length === 0) {
      const name = `n${step}`
      live.set(name, { record: fresh(name), createRevision: BigInt(++revision) })
      if (op < 4) fastSteps++
    } else if (op < 7) {
      live.delete(names[rnd(names.length)] as string)
    } else if (op < 9) {
      const name = names[rnd(names.length)] as string
      const c = live.get(name) as Claimant<NodeRecord>
      live.set(name, { ...c, record: { ...c.record, endpoint: `192.0.2.${rnd(200)}:51820` } })
    } else {
      const name = names[rnd(names.length)] as string
      const c = live.get(name) as Claimant<NodeRecord>
      live.set(name, { ...c, record: { ...fresh(name) } })
    }
    const input = [...live.values()]
    t.strictSame(sorted(ledger.resolve(input)), sorted(resolveClaims(input)), `step ${step}`)
  }
  t.ok(fastSteps > 100, 'the stream exercised joins')
})

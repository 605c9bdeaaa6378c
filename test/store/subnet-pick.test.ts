import t from 'tap'
import type { FamilyRange } from '../../lib/config/network'
import { chooseSubnet, pickFree } from '../../lib/store/subnet-pick'
import { isLeaseError } from '../../lib/store/lease-error'

const range: FamilyRange = { cidr: '10.250.0.0/21', subnetLen: 24 }
const first = (): bigint => 0n
const all = (r: FamilyRange): string[] => Array.from({ length: 8 }, (_, i) => `10.250.${i}.0/24`).filter(s => {
  const i = Number(s.split('.')[2])
  const lo = r.subnetMin === undefined ? 0 : Number(r.subnetMin.split('.')[2])
  const hi = r.subnetMax === undefined ? 7 : Number(r.subnetMax.split('.')[2])
  return i >= lo && i <= hi
})

t.test('order: remembered, owned in etcd, requested, random', async t => {
  const owners = new Map([['10.250.1.0/24', 'a'], ['10.250.2.0/24', 'b']])
  const base = { node: 'a', family: 4 as const, range, owners, random: first }
  t.strictSame(chooseSubnet({ ...base, remembered: '10.250.5.0/24' }), { cidr: '10.250.5.0/24', source: 'state' }, 'remembered and free')
  t.strictSame(chooseSubnet({ ...base, remembered: '10.250.2.0/24' }), { cidr: '10.250.1.0/24', source: 'etcd' }, 'remembered but taken → ours in etcd')
  t.strictSame(chooseSubnet({ ...base, requested: '10.250.6.0/24' }), { cidr: '10.250.1.0/24', source: 'etcd' }, 'etcd before requested')
  t.strictSame(chooseSubnet({ ...base, node: 'c', requested: '10.250.6.0/24' }), { cidr: '10.250.6.0/24', source: 'requested' })
  t.strictSame(chooseSubnet({ ...base, node: 'c' }), { cidr: '10.250.0.0/24', source: 'random' })
  t.strictSame(chooseSubnet({ ...base, node: 'c', remembered: '10.251.0.0/24' }), { cidr: '10.250.0.0/24', source: 'random' }, 'remembered outside the range is ignored')
})

t.test('requested subnet errors name the holder or the problem', async t => {
  const owners = new Map([['10.250.2.0/24', 'b']])
  const base = { node: 'c', family: 4 as const, range, owners, random: first }
  t.throws(() => chooseSubnet({ ...base, requested: '10.250.2.0/24' }), { problem: 'requestedTaken', message: /10\.250\.2\.0\/24 is held by node b/ })
  t.throws(() => chooseSubnet({ ...base, requested: '10.250.2.0/25' }), { problem: 'requestedInvalid' })
  t.throws(() => chooseSubnet({ ...base, requested: '10.9.2.0/24' }), { problem: 'requestedInvalid', message: /inside 10\.250\.0\.0\/21/ })
})

t.test('random picks stay in bounds and skip taken subnets', async t => {
  const bounded: FamilyRange = { ...range, subnetMin: '10.250.2.0/24', subnetMax: '10.250.4.0/24' }
  let seed = 1
  const random = (n: bigint): bigint => { seed = (seed * 1103515245 + 12345) % 2147483648; return BigInt(seed) % n }
  const seen = new Set<string>()
  for (let i = 0; i < 200; i++) {
    const s = pickFree(bounded, new Set(['10.250.3.0/24']), random)
    if (s !== undefined) seen.add(s)
  }
  t.strictSame([...seen].sort(), ['10.250.2.0/24', '10.250.4.0/24'])
})

t.test('dense range: the walk finds the last free subnet', async t => {
  const taken = new Set(all(range).filter(s => s !== '10.250.6.0/24'))
  t.equal(pickFree(range, taken, first), '10.250.6.0/24')
})

t.test('exhaustion names the range and the count', async t => {
  const owners = new Map(all(range).map(s => [s, 'x']))
  let err: unknown
  try { chooseSubnet({ node: 'n', family: 4, range, owners, random: first }) } catch (e) { err = e }
  t.ok(isLeaseError(err))
  t.match((err as Error).message, /no free \/24 subnet left in IPv4 range 10\.250\.0\.0\/21: all 8 are leased/)
  const bounded: FamilyRange = { ...range, subnetMin: '10.250.6.0/24' }
  t.throws(() => chooseSubnet({ node: 'n', family: 4, range: bounded, owners: new Map(all(bounded).map(s => [s, 'x'])), random: first }),
    { problem: 'exhausted', message: /bounds 10\.250\.6\.0\/24\.\.end\): all 2 are leased/ })
})

t.test('huge IPv6 ranges do not enumerate', async t => {
  const v6: FamilyRange = { cidr: 'fd00::/32', subnetLen: 64 }
  const s = pickFree(v6, new Set(), n => n - 1n)
  t.equal(s, 'fd00:0:ffff:ffff::/64')
})

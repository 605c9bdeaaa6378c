// Allocation policy: which subnet a node gets, per family, given who holds what. In order:
// (a) the one remembered on local disk, if free or already ours; (b) the one etcd says this node
// owns; (c) the one the operator requested (error naming the holder if taken); (d) a random free
// one inside subnetMin..subnetMax, so concurrent joiners rarely collide. Pure (random injected).
import { type Cidr, type Family, containsCidr, formatCidr, nthSubnet, parseCidr, subnetCount, subnetIndex } from '../ipam/cidr'
import type { FamilyRange } from '../config/network'
import { LeaseError } from './lease-error'

/** Uniform random integer in [0, n). */
export type RandomBelow = (n: bigint) => bigint

export type ChoiceSource = 'state' | 'etcd' | 'requested' | 'random'

export interface FamilyChoiceInput {
  node: string
  family: Family
  range: FamilyRange
  /** Every subnet currently leased in etcd → the node holding it. */
  owners: ReadonlyMap<string, string>
  remembered?: string
  requested?: string
  random: RandomBelow
}

function subnetOf (range: FamilyRange, text: string | undefined): Cidr | undefined {
  if (text === undefined) return undefined
  try {
    const c = parseCidr(text)
    return c.len === range.subnetLen && containsCidr(parseCidr(range.cidr), c) ? c : undefined
  } catch {
    return undefined
  }
}

/** Index bounds [lo, hi] of automatically allocated subnets. */
function bounds (range: FamilyRange): { cidr: Cidr, lo: bigint, hi: bigint } {
  const cidr = parseCidr(range.cidr)
  const lo = range.subnetMin === undefined ? 0n : subnetIndex(cidr, parseCidr(range.subnetMin))
  const hi = range.subnetMax === undefined
    ? subnetCount(cidr, range.subnetLen) - 1n
    : subnetIndex(cidr, parseCidr(range.subnetMax))
  return { cidr, lo, hi }
}

/** A random free subnet within the bounds, or undefined when all are taken. */
export function pickFree (range: FamilyRange, taken: ReadonlySet<string>, random: RandomBelow): string | undefined {
  const { cidr, lo, hi } = bounds(range)
  const total = hi - lo + 1n
  let takenIn = 0n
  for (const t of taken) {
    const c = subnetOf(range, t)
    if (c === undefined) continue
    const i = subnetIndex(cidr, c)
    if (i >= lo && i <= hi) takenIn++
  }
  if (takenIn >= total) return undefined
  const at = (i: bigint): string => formatCidr(nthSubnet(cidr, range.subnetLen, lo + i))
  // Sparse ranges (the normal case): a few random probes find a free one.
  for (let probe = 0; probe < 32; probe++) {
    const s = at(random(total))
    if (!taken.has(s)) return s
  }
  // Dense: walk from a random start. Reaching here means `total` is not much larger than the
  // number of leases etcd holds, so the walk is bounded by the size of the cluster.
  const start = random(total)
  for (let i = 0n; i < total; i++) {
    const s = at((start + i) % total)
    if (!taken.has(s)) return s
  }
  return undefined
}

export function chooseSubnet (input: FamilyChoiceInput): { cidr: string, source: ChoiceSource } {
  const { node, family, range, owners } = input
  const free = (s: string): boolean => {
    const o = owners.get(s)
    return o === undefined || o === node
  }
  const remembered = subnetOf(range, input.remembered)
  if (remembered !== undefined && free(formatCidr(remembered))) return { cidr: formatCidr(remembered), source: 'state' }

  const ours = [...owners].filter(([s, o]) => o === node && subnetOf(range, s) !== undefined).map(([s]) => s).sort()
  if (ours[0] !== undefined) return { cidr: ours[0], source: 'etcd' }

  if (input.requested !== undefined) {
    const req = subnetOf(range, input.requested)
    if (req === undefined || formatCidr(req) !== input.requested) {
      throw new LeaseError(node, 'requestedInvalid',
        `requested subnet "${input.requested}" is not a canonical /${range.subnetLen} inside ${range.cidr}`)
    }
    const holder = owners.get(input.requested)
    if (holder !== undefined && holder !== node) {
      throw new LeaseError(node, 'requestedTaken', `requested subnet ${input.requested} is held by node ${holder}`)
    }
    return { cidr: input.requested, source: 'requested' }
  }

  const picked = pickFree(range, new Set(owners.keys()), input.random)
  if (picked === undefined) {
    const { lo, hi } = bounds(range)
    const span = range.subnetMin !== undefined || range.subnetMax !== undefined
      ? ` (bounds ${range.subnetMin ?? 'start'}..${range.subnetMax ?? 'end'})`
      : ''
    throw new LeaseError(node, 'exhausted',
      `no free /${range.subnetLen} subnet left in IPv${family} range ${range.cidr}${span}: all ${hi - lo + 1n} are leased`)
  }
  return { cidr: picked, source: 'random' }
}

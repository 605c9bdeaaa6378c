// Who owns a WireGuard public key, a VXLAN MAC or a pod CIDR when two node records claim it: the
// earlier claimant, by the etcd create revision of its record (ties by name), so that every node
// and podmeshctl reach the same verdict from the same records. A record is accepted only if none
// of its claims collides with an already accepted record; a rejected record claims nothing, so a
// third record colliding only with it is judged on its own. Pure: no I/O, no clock.
import { type Cidr, type Family, parseCidr, prefixMask } from '../ipam/cidr'
import type { NodeRecord } from '../store/node-record'

export type ClaimKind = 'publicKey' | 'vxlanMac' | 'podCIDR'
export const CLAIM_KINDS: readonly ClaimKind[] = ['publicKey', 'vxlanMac', 'podCIDR']

/** `node`'s record is skipped because `holder`, an earlier claimant, holds `value`. */
export interface Conflict {
  node: string
  holder: string
  what: ClaimKind
  value: string
}

/** The fields of a record that claim something (a NodeRecord has them all). */
export type Claims = Pick<NodeRecord, 'name' | 'publicKey' | 'vxlan' | 'podCIDRs'>

export interface Claimant<T extends Claims> {
  record: T
  /** etcd create revision of the record's key: the age of the claim. */
  createRevision: bigint
}

export interface ClaimVerdict<T extends Claims> {
  /** Records that hold all their claims, earliest claimant first. */
  accepted: T[]
  /** One entry per claim of a skipped record that an accepted record already holds. */
  conflicts: Conflict[]
}

/** Text key of `c` truncated to `len` bits, memoised per parsed prefix (the same few each pass). */
const truncated = new WeakMap<Cidr, Map<number, string>>()
function keyAt (c: Cidr, len: number): string {
  let m = truncated.get(c)
  if (m === undefined) { m = new Map(); truncated.set(c, m) }
  let k = m.get(len)
  if (k === undefined) {
    k = `${c.family}|${(c.addr & prefixMask(c.family, len)).toString(16)}|${len}`
    m.set(len, k)
  }
  return k
}

/** Parsed pod CIDRs per record object: the watcher hands out the same objects until one changes. */
const parsedCidrs = new WeakMap<Claims, Cidr[]>()
function cidrsOf (r: Claims): Cidr[] {
  let c = parsedCidrs.get(r)
  if (c === undefined) {
    c = r.podCIDRs.map(text => parseCidr(text))
    parsedCidrs.set(r, c)
  }
  return c
}

export const byClaimAge = <T extends Claims>(a: Claimant<T>, b: Claimant<T>): number =>
  a.createRevision < b.createRevision ? -1 : a.createRevision > b.createRevision ? 1
    : a.record.name < b.record.name ? -1 : a.record.name > b.record.name ? 1 : 0

/**
 * Overlap of prefixes in O(prefix lengths in use) per lookup instead of O(records): every accepted
 * prefix is indexed under its own key (`exact`) and under its truncation to each shorter length
 * in use (`within`). A new prefix c overlaps an accepted p when p contains c (c truncated to p's
 * length is in `exact`) or c contains p (c itself is in `within`).
 */
class PrefixIndex {
  private readonly exact = new Map<string, string>()
  private readonly within = new Map<string, string>()
  constructor (private readonly lengths: ReadonlyMap<Family, readonly number[]>) {}

  holderOf (c: Cidr): string | undefined {
    for (const len of this.lengths.get(c.family) ?? []) {
      if (len > c.len) continue
      const h = this.exact.get(keyAt(c, len))
      if (h !== undefined) return h
    }
    return this.within.get(keyAt(c, c.len))
  }

  add (c: Cidr, holder: string): void {
    const k = keyAt(c, c.len)
    if (!this.exact.has(k)) this.exact.set(k, holder)
    for (const len of this.lengths.get(c.family) ?? []) {
      if (len > c.len) continue
      const w = keyAt(c, len)
      if (!this.within.has(w)) this.within.set(w, holder)
    }
  }
}

/** The indices of accepted claims, grown one record at a time in claim-age order. */
class ClaimIndex {
  readonly keys = new Map<string, string>()
  readonly macs = new Map<string, string>()
  readonly prefixes: PrefixIndex
  constructor (readonly lengths: ReadonlyMap<Family, readonly number[]>) { this.prefixes = new PrefixIndex(lengths) }

  /** Whether every prefix length of `record` is indexed (else the index cannot judge it). */
  covers (record: Claims): boolean {
    return cidrsOf(record).every(c => this.lengths.get(c.family)?.includes(c.len) === true)
  }

  /** The conflicts `record` has with what is accepted; none: it is accepted and indexed. */
  judge (record: Claims): Conflict[] {
    const found: Conflict[] = []
    const mac = record.vxlan?.mac.toLowerCase()
    const keyHolder = record.publicKey === undefined ? undefined : this.keys.get(record.publicKey)
    if (keyHolder !== undefined && record.publicKey !== undefined) found.push({ node: record.name, holder: keyHolder, what: 'publicKey', value: record.publicKey })
    const macHolder = mac === undefined ? undefined : this.macs.get(mac)
    if (macHolder !== undefined && mac !== undefined) found.push({ node: record.name, holder: macHolder, what: 'vxlanMac', value: mac })
    const cidrs = cidrsOf(record)
    cidrs.forEach((c, i) => {
      const holder = this.prefixes.holderOf(c)
      if (holder !== undefined) found.push({ node: record.name, holder, what: 'podCIDR', value: record.podCIDRs[i] ?? '' })
    })
    if (found.length > 0) return found
    if (record.publicKey !== undefined) this.keys.set(record.publicKey, record.name)
    if (mac !== undefined) this.macs.set(mac, record.name)
    for (const c of cidrs) this.prefixes.add(c, record.name)
    return found
  }
}

function prefixLengths (records: Iterable<Claims>): Map<Family, number[]> {
  const lengths = new Map<Family, number[]>()
  for (const record of records) {
    for (const c of cidrsOf(record)) {
      const l = lengths.get(c.family) ?? []
      if (!l.includes(c.len)) lengths.set(c.family, [...l, c.len].sort((a, b) => a - b))
    }
  }
  return lengths
}

/** Judges every claim; see the module comment for the rule. */
export function resolveClaims<T extends Claims> (claimants: Iterable<Claimant<T>>): ClaimVerdict<T> {
  return judgeAll([...claimants].sort(byClaimAge)).verdict
}

function judgeAll<T extends Claims> (ordered: Array<Claimant<T>>): { verdict: ClaimVerdict<T>, index: ClaimIndex } {
  const index = new ClaimIndex(prefixLengths(ordered.map(c => c.record)))
  const accepted: T[] = []
  const conflicts: Conflict[] = []
  for (const { record } of ordered) {
    const found = index.judge(record)
    if (found.length > 0) conflicts.push(...found)
    else accepted.push(record)
  }
  return { verdict: { accepted, conflicts }, index }
}

/** What a record claims, as one comparable string (cached per record object). */
const claimTexts = new WeakMap<Claims, string>()
function claimText (r: Claims): string {
  let t = claimTexts.get(r)
  if (t === undefined) {
    t = `${r.publicKey ?? ''}|${r.vxlan?.mac.toLowerCase() ?? ''}|${r.podCIDRs.join(',')}`
    claimTexts.set(r, t)
  }
  return t
}

/**
 * resolveClaims over a stream of snapshots (the watch's), cheap for the common changes: records
 * whose claims did not change keep their verdict, and records newer than every judged one (a
 * join) are judged against the accepted claims alone, O(new records). Anything else — a record
 * gone, claims changed, a new record older than the newest judged, a prefix length not seen —
 * judges everything anew. The verdict is resolveClaims's (accepted in input order).
 */
export class ClaimLedger<T extends Claims> {
  private last: {
    index: ClaimIndex
    /** name → create revision, claims and whether accepted. */
    judged: Map<string, { createRevision: bigint, claims: string, accepted: boolean }>
    newest: bigint
    conflicts: Conflict[]
  } | undefined

  resolve (claimants: ReadonlyArray<Claimant<T>>): ClaimVerdict<T> {
    return this.extend(claimants) ?? this.rejudge(claimants)
  }

  private rejudge (claimants: ReadonlyArray<Claimant<T>>): ClaimVerdict<T> {
    const { verdict, index } = judgeAll([...claimants].sort(byClaimAge))
    const acceptedNames = new Set(verdict.accepted.map(r => r.name))
    const judged = new Map(claimants.map(c => [c.record.name, { createRevision: c.createRevision, claims: claimText(c.record), accepted: acceptedNames.has(c.record.name) }]))
    const newest = claimants.reduce((m, c) => c.createRevision > m ? c.createRevision : m, -1n)
    this.last = { index, judged, newest, conflicts: verdict.conflicts }
    return { accepted: claimants.filter(c => acceptedNames.has(c.record.name)).map(c => c.record), conflicts: verdict.conflicts }
  }

  private extend (claimants: ReadonlyArray<Claimant<T>>): ClaimVerdict<T> | undefined {
    const last = this.last
    if (last === undefined) return undefined
    const fresh: Array<Claimant<T>> = []
    let kept = 0
    // First only look: the indices are touched once the fast path is sure to hold.
    for (const c of claimants) {
      const before = last.judged.get(c.record.name)
      if (before === undefined) {
        if (c.createRevision <= last.newest || !last.index.covers(c.record)) return undefined
        fresh.push(c)
      } else {
        if (before.createRevision !== c.createRevision || before.claims !== claimText(c.record)) return undefined
        kept++
      }
    }
    if (kept !== last.judged.size) return undefined // a record is gone: its claims may free others
    fresh.sort(byClaimAge)
    const conflicts = [...last.conflicts]
    for (const c of fresh) {
      const found = last.index.judge(c.record)
      conflicts.push(...found)
      last.judged.set(c.record.name, { createRevision: c.createRevision, claims: claimText(c.record), accepted: found.length === 0 })
      if (c.createRevision > last.newest) last.newest = c.createRevision
    }
    last.conflicts = conflicts
    return { accepted: claimants.filter(c => last.judged.get(c.record.name)?.accepted === true).map(c => c.record), conflicts }
  }
}

/** What a node about to publish itself would take from another node: its key or MAC, held by an accepted record. */
export interface OwnClaims { name: string, publicKey?: string, vxlanMac?: string }

/**
 * The conflicts that forbid `self` to publish its identity, given a verdict over the records in
 * etcd: its own record lost its key or MAC to an earlier claimant, or (own record absent, or
 * published with other values) another accepted record already holds them. Pod CIDRs are not
 * judged here: subnet leases are exclusive in etcd itself.
 */
export function ownClaimConflicts (self: OwnClaims, verdict: ClaimVerdict<Claims>): Conflict[] {
  const out = verdict.conflicts.filter(c => c.node === self.name && c.what !== 'podCIDR')
  const mac = self.vxlanMac?.toLowerCase()
  for (const r of verdict.accepted) {
    if (r.name === self.name) continue
    if (self.publicKey !== undefined && r.publicKey === self.publicKey && !out.some(c => c.what === 'publicKey')) {
      out.push({ node: self.name, holder: r.name, what: 'publicKey', value: self.publicKey })
    }
    if (mac !== undefined && r.vxlan?.mac.toLowerCase() === mac && !out.some(c => c.what === 'vxlanMac')) {
      out.push({ node: self.name, holder: r.name, what: 'vxlanMac', value: mac })
    }
  }
  return out
}

/** A stable identity of a conflict, to report each one once. */
export const conflictId = (c: Conflict): string => `${c.node}|${c.holder}|${c.what}|${c.value}`

export const CLAIM_LABEL: Record<ClaimKind, string> = { publicKey: 'WireGuard public key', vxlanMac: 'VXLAN MAC', podCIDR: 'pod CIDR' }

/** "node b claims the VXLAN MAC 02:…, which node a holds (the earlier claimant)": for logs and messages. */
export const describeConflict = (c: Conflict): string =>
  `node ${c.node} claims the ${CLAIM_LABEL[c.what]} ${c.value}, which node ${c.holder} holds (the earlier claimant)`

/** "VXLAN MAC of node a": for a table cell. */
export const conflictLabel = (c: Conflict): string => `${CLAIM_LABEL[c.what]} of ${c.holder}`

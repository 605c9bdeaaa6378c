// Thin etcd access for subnet leasing (the registry under the allocation policy): one consistent
// read of every subnet lease plus this node's record, the cheap read of just the node's own keys,
// and the all-or-nothing claim transaction.
import type { IRequestOp, ICompare } from 'etcd3'
import { type StoreClient, storeCall } from './client'
import { nodeKey, parseKey, prefixEnd, subnetKey, subnetsPrefix } from './keys'
import { parseSubnetValue } from './subnet-value'

/** Owner recorded for a subnets/ key whose value is unreadable: it counts as taken by no one we know. */
export const UNKNOWN_OWNER = '(unreadable value)'

export interface SubnetHold {
  node: string
  modRevision: string
}

export interface AllocationView {
  revision: string
  /** Every leased subnet (canonical CIDR) → who holds it. */
  subnets: Map<string, SubnetHold>
  /** This node's record as stored, if any. */
  record?: { value: string, modRevision: string }
}

/** Reads subnets/ and nodes/<name> in one transaction, so both are at one revision. */
export async function readAllocation (client: StoreClient, prefix: string, name: string): Promise<AllocationView> {
  const sp = subnetsPrefix(prefix)
  const res = await storeCall(`read allocation for ${name}`, async () => await client.kv.txn({
    compare: [],
    success: [
      { request_range: { key: Buffer.from(sp), range_end: prefixEnd(sp) } },
      { request_range: { key: Buffer.from(nodeKey(prefix, name)) } }
    ],
    failure: []
  }))
  const subnets = new Map<string, SubnetHold>()
  for (const kv of res.responses[0]?.response_range.kvs ?? []) {
    const key = kv.key.toString()
    let cidr: string
    try {
      const parsed = parseKey(prefix, key)
      if (parsed.kind !== 'subnet') continue
      cidr = parsed.cidr
    } catch {
      continue // a malformed key names no subnet we could hand out
    }
    let node = UNKNOWN_OWNER
    try { node = parseSubnetValue(key, kv.value.toString()) } catch {}
    subnets.set(cidr, { node, modRevision: kv.mod_revision })
  }
  const view: AllocationView = { revision: res.header.revision, subnets }
  const rec = res.responses[1]?.response_range.kvs[0]
  if (rec !== undefined) view.record = { value: rec.value.toString(), modRevision: rec.mod_revision }
  return view
}

export interface ClaimOp {
  key: string
  /** The key's mod revision as we last read it; "0" means it must not exist. */
  expectModRevision: string
}

export interface Claim {
  /** What the claim is for, for error messages ("claim node-3"). */
  op: string
  leaseId: string
  put: Array<ClaimOp & { value: string }>
  del: ClaimOp[]
}

function expect (o: ClaimOp): ICompare {
  const key = Buffer.from(o.key)
  return o.expectModRevision === '0'
    ? { key, target: 'Create', result: 'Equal', create_revision: 0 }
    : { key, target: 'Mod', result: 'Equal', mod_revision: o.expectModRevision }
}

/**
 * One transaction: succeeds only if every key is as we read it (absent, or at the revision we
 * saw), then puts all values on the lease and deletes the stale keys — or changes nothing.
 */
export async function commitClaim (client: StoreClient, claim: Claim): Promise<{ succeeded: boolean, revision: string }> {
  const success: IRequestOp[] = [
    ...claim.put.map(p => ({ request_put: { key: Buffer.from(p.key), value: Buffer.from(p.value), lease: claim.leaseId } })),
    ...claim.del.map(d => ({ request_delete_range: { key: Buffer.from(d.key) } }))
  ]
  const res = await storeCall(claim.op, async () => await client.kv.txn({
    compare: [...claim.put, ...claim.del].map(expect),
    success,
    failure: []
  }))
  return { succeeded: res.succeeded, revision: res.header.revision }
}

/** A key of this node's as stored: who it names (for subnets), its revision and its lease. */
export interface StoredKey { modRevision: string, lease: string }

export interface OwnKeys {
  record?: StoredKey & { value: string }
  /** Each of the node's subnets → who holds it now and on which lease (absent: not leased). */
  subnets: Map<string, StoredKey & { node: string }>
}

/**
 * Reads the node's record and the leases of its own subnets (not the whole subnets/ directory)
 * in one transaction: the cheap check, repeated on every resync, that its keys are still there.
 */
export async function readOwnKeys (client: StoreClient, prefix: string, name: string, cidrs: readonly string[]): Promise<OwnKeys> {
  const res = await storeCall(`read the keys of node ${name}`, async () => await client.kv.txn({
    compare: [],
    success: [nodeKey(prefix, name), ...cidrs.map(c => subnetKey(prefix, c))].map(k => ({ request_range: { key: Buffer.from(k) } })),
    failure: []
  }))
  const out: OwnKeys = { subnets: new Map() }
  const rec = res.responses[0]?.response_range.kvs[0]
  if (rec !== undefined) out.record = { value: rec.value.toString(), modRevision: rec.mod_revision, lease: rec.lease }
  cidrs.forEach((cidr, i) => {
    const kv = res.responses[i + 1]?.response_range.kvs[0]
    if (kv === undefined) return
    let node = UNKNOWN_OWNER
    try { node = parseSubnetValue(kv.key.toString(), kv.value.toString()) } catch {}
    out.subnets.set(cidr, { node, modRevision: kv.mod_revision, lease: kv.lease })
  })
  return out
}

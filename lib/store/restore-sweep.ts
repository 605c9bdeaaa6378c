// After etcd is restored from an older snapshot, the records of nodes that left or died since the
// snapshot are back, on leases the restore revived for a whole TTL. Every live node writes its
// record again when it notices the restore, with a generation above any it had published; so a
// record whose generation is still at most what this node knew of it before the restore belongs
// to no live node, and goes with its subnet leases and status key. Judged only for nodes this
// node knew before the restore, those that had left its view included (no clocks, no other
// node's word); compare-and-delete per node, so a record re-written meanwhile is kept.
import type { ICompare, IKeyValue, IRequestOp } from 'etcd3'
import { type StoreClient, storeCall } from './client'
import { nodesPrefix, parseKey, prefixEnd, statusKey, subnetsPrefix } from './keys'
import { parseSubnetValue } from './subnet-value'

interface Held { key: string, modRevision: string }

/**
 * Removes the records that nobody re-asserted since the restore. `known` is each node's record
 * generation as this node saw it before the restore; returns the names removed.
 */
export async function removeUnasserted (client: StoreClient, prefix: string, o: { known: ReadonlyMap<string, number>, except: string }): Promise<string[]> {
  const dirs = [nodesPrefix(prefix), subnetsPrefix(prefix)]
  const res = await storeCall(`read ${prefix} after an etcd restore`, async () => await client.kv.txn({
    compare: [],
    success: dirs.map(d => ({ request_range: { key: Buffer.from(d), range_end: prefixEnd(d) } })),
    failure: []
  }))
  const kvs = (i: number): IKeyValue[] => res.responses[i]?.response_range.kvs ?? []
  const subnets = new Map<string, Held[]>()
  for (const kv of kvs(1)) {
    let owner: string
    try { owner = parseSubnetValue(kv.key.toString(), kv.value.toString()) } catch { continue }
    subnets.set(owner, [...subnets.get(owner) ?? [], { key: kv.key.toString(), modRevision: kv.mod_revision }])
  }
  const removed: string[] = []
  for (const kv of kvs(0)) {
    const name = nodeName(prefix, kv)
    if (name === undefined || name === o.except) continue
    const knownGeneration = o.known.get(name)
    const generation = generationOf(kv.value.toString())
    if (knownGeneration === undefined || generation === undefined || generation > knownGeneration) continue
    const held = [{ key: kv.key.toString(), modRevision: kv.mod_revision }, ...subnets.get(name) ?? []]
    const compare: ICompare[] = held.map(h => ({ key: Buffer.from(h.key), target: 'Mod', result: 'Equal', mod_revision: h.modRevision }))
    const success: IRequestOp[] = [...held.map(h => h.key), statusKey(prefix, name)].map(key => ({ request_delete_range: { key: Buffer.from(key) } }))
    const done = await storeCall(`remove node ${name} (not re-asserted since the etcd restore)`, async () => await client.kv.txn({ compare, success, failure: [] }))
    if (done.succeeded) removed.push(name)
  }
  return removed.sort()
}

function nodeName (prefix: string, kv: IKeyValue): string | undefined {
  try {
    const p = parseKey(prefix, kv.key.toString())
    return p.kind === 'node' ? p.name : undefined
  } catch {
    return undefined
  }
}

/** The record's generation, read leniently: an unreadable record is judged by nobody here. */
function generationOf (value: string): number | undefined {
  try {
    const g = (JSON.parse(value) as { generation?: unknown }).generation
    return typeof g === 'number' && Number.isSafeInteger(g) ? g : undefined
  } catch {
    return undefined
  }
}

// pods/<node>/<container id>: a node's pods as its CNI plugin reported them (docs/services.md),
// on the node's lease. The keys, the read of one node's pods with the lease each hangs on, and
// the batched write that makes them what the node says. Thin etcd access; the plan is the caller's.
import type { IRequestOp } from 'etcd3'
import { type StoreClient, storeCall } from './client'
import { rangePages } from './paged-range'

export const podsPrefix = (prefix: string): string => `${prefix}pods/`
export const nodePodsPrefix = (prefix: string, node: string): string => `${podsPrefix(prefix)}${node}/`
export const podKey = (prefix: string, node: string, id: string): string => `${nodePodsPrefix(prefix, node)}${id}`

/** One stored key under pods/<node>/: its suffix (the container ID, unchecked), value and lease. */
export interface StoredPod {
  value: string
  /** The lease ID ("0": none). */
  lease: string
}

/** Every key under pods/<node>/, by suffix. */
export async function readNodePods (client: StoreClient, prefix: string, node: string): Promise<Map<string, StoredPod>> {
  const dir = nodePodsPrefix(prefix, node)
  const out = new Map<string, StoredPod>()
  for await (const page of rangePages(client, dir, { limit: 1000 })) {
    for (const kv of page.kvs) out.set(kv.key.toString().slice(dir.length), { value: kv.value.toString(), lease: kv.lease })
  }
  return out
}

/** etcd's default --max-txn-ops. */
const MAX_TXN_OPS = 128

/** Puts (on `leaseId`) and deletes under pods/<node>/, in transactions of at most 128 operations. */
export async function writeNodePods (client: StoreClient, prefix: string, node: string, change: { leaseId: string, put: Array<{ id: string, value: string }>, del: string[] }): Promise<void> {
  const ops: IRequestOp[] = [
    ...change.put.map(p => ({ request_put: { key: Buffer.from(podKey(prefix, node, p.id)), value: Buffer.from(p.value), lease: change.leaseId } })),
    ...change.del.map(id => ({ request_delete_range: { key: Buffer.from(podKey(prefix, node, id)) } }))
  ]
  for (let i = 0; i < ops.length; i += MAX_TXN_OPS) {
    const batch = ops.slice(i, i + MAX_TXN_OPS)
    await storeCall(`write ${batch.length} keys under ${nodePodsPrefix(prefix, node)}`, async () => await client.kv.txn({ compare: [], success: batch, failure: [] }))
  }
}

// One node's pods/<node>/ folder as its podmeshd publishes it (keys: service-keys.ts): the read
// of every key with the lease it hangs on, and the batched write that makes the folder what the
// node's spool says. Thin etcd access; the plan is the caller's (daemon/pod-publish-plan.ts).
import type { IRequestOp } from 'etcd3'
import { type StoreClient, storeCall } from './client'
import { rangePages } from './paged-range'
import { nodePodsPrefix } from './service-keys'

/** One stored key of the folder: its value and lease ("0": none). */
export interface StoredPod {
  value: string
  lease: string
}

/** Every key under pods/<node>/, by suffix (the container ID, not checked: a malformed one is still the node's to delete). */
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

/** Puts (on `leaseId`) and deletes under pods/<node>/ (suffixes as readNodePods gives them), at most 128 operations a transaction. */
export async function writeNodePods (client: StoreClient, prefix: string, node: string, change: { leaseId: string, put: Array<{ id: string, value: string }>, del: string[] }): Promise<void> {
  const dir = nodePodsPrefix(prefix, node)
  const ops: IRequestOp[] = [
    ...change.put.map(p => ({ request_put: { key: Buffer.from(dir + p.id), value: Buffer.from(p.value), lease: change.leaseId } })),
    ...change.del.map(id => ({ request_delete_range: { key: Buffer.from(dir + id) } }))
  ]
  for (let i = 0; i < ops.length; i += MAX_TXN_OPS) {
    const batch = ops.slice(i, i + MAX_TXN_OPS)
    await storeCall(`write ${batch.length} keys under ${dir}`, async () => await client.kv.txn({ compare: [], success: batch, failure: [] }))
  }
}

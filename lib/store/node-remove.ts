// Decommission: delete a node's record, every subnet lease it holds and its status key in one
// transaction, so the node vanishes from every watcher at a single revision.
import type { IRequestOp, ICompare } from 'etcd3'
import { type StoreClient, StoreError, storeCall } from './client'
import { KeyError, isNodeName, nodeKey, statusKey, subnetKey } from './keys'
import { readAllocation } from './lease-registry'

export interface RemovedNode {
  name: string
  /** Whether a node record was deleted. */
  record: boolean
  /** Subnets whose leases were deleted. */
  subnets: string[]
  status: boolean
}

export async function removeNode (client: StoreClient, prefix: string, name: string): Promise<RemovedNode> {
  if (!isNodeName(name)) throw new KeyError(nodeKey(prefix, name), `"${name}" is not a valid node name`)
  // Compare-and-delete; a concurrent change (the node re-publishing) just means read again.
  for (let attempt = 0; ; attempt++) {
    const view = await readAllocation(client, prefix, name)
    const subnets = [...view.subnets].filter(([, h]) => h.node === name)
    const compare: ICompare[] = subnets.map(([cidr, h]) => ({
      key: Buffer.from(subnetKey(prefix, cidr)), target: 'Mod', result: 'Equal', mod_revision: h.modRevision
    }))
    compare.push(view.record === undefined
      ? { key: Buffer.from(nodeKey(prefix, name)), target: 'Create', result: 'Equal', create_revision: 0 }
      : { key: Buffer.from(nodeKey(prefix, name)), target: 'Mod', result: 'Equal', mod_revision: view.record.modRevision })
    const success: IRequestOp[] = [
      { request_delete_range: { key: Buffer.from(statusKey(prefix, name)) } },
      { request_delete_range: { key: Buffer.from(nodeKey(prefix, name)) } },
      ...subnets.map(([cidr]) => ({ request_delete_range: { key: Buffer.from(subnetKey(prefix, cidr)) } }))
    ]
    const res = await storeCall(`remove node ${name}`, async () => await client.kv.txn({ compare, success, failure: [] }))
    if (res.succeeded) {
      return {
        name,
        record: view.record !== undefined,
        subnets: subnets.map(([cidr]) => cidr),
        status: res.responses[0]?.response_delete_range.deleted !== '0'
      }
    }
    if (attempt >= 10) throw new StoreError('other', `remove node ${name}`, 'the node\'s keys kept changing while removing them; try again')
  }
}

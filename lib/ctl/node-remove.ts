// `podmeshctl node remove <name>`: decommission a node — its record, subnet leases and status
// disappear from etcd at one revision; every other node drops its tunnel and routes to it. A
// node whose podmeshd still runs holds its registration as desired state and writes it again
// at once: the command says so (decommission a live node with --leave, or stop it first).
import type { StoreClient } from '../store/client'
import { storeCall } from '../store/client'
import { statusKey } from '../store/keys'
import { type RemovedNode, removeNode } from '../store/node-remove'
import { STATUS_STALE_MS } from './mesh-view'
import { type OutputFormat, formatJson, formatTable } from './output'
import { NodeNotFoundError } from './node-not-found'

export const nodeRemoveHelp = 'podmeshctl node remove <name>   delete a node\'s record, subnet leases and status\n'

export async function runNodeRemove (client: StoreClient, prefix: string, name: string, format: OutputFormat, now = Date.now()): Promise<string> {
  const running = await reportsRecently(client, prefix, name, now)
  const removed: RemovedNode = await removeNode(client, prefix, name)
  if (!removed.record && removed.subnets.length === 0 && !removed.status) throw new NodeNotFoundError(name, prefix, 'no record, subnet lease or status to remove')
  if (format === 'json') return formatJson({ ...removed, running })
  const table = formatTable([
    ['NODE', 'RECORD', 'SUBNETS', 'STATUS'],
    [name, removed.record ? 'deleted' : '-', removed.subnets.join(',') || '-', removed.status ? 'deleted' : '-']
  ])
  return running
    ? `${table}warning: podmeshd on ${name} is running (its status is fresh) and will register again with the same subnets; ` +
      'to decommission a live node, stop it with --leave (PODMESH_LEAVE=true), or stop it first and then remove it\n'
    : table
}

/** Whether the node's status key was written within the stale threshold: its podmeshd runs. */
async function reportsRecently (client: StoreClient, prefix: string, name: string, now: number): Promise<boolean> {
  const value = await storeCall(`read ${statusKey(prefix, name)}`, async () => await client.get(statusKey(prefix, name)).string())
  if (value === null) return false
  try {
    const updatedAt = Date.parse((JSON.parse(value) as { updatedAt?: string }).updatedAt ?? '')
    return now - updatedAt <= STATUS_STALE_MS
  } catch {
    return false
  }
}

// `podmeshctl node remove <name>`: decommission a node — its record, subnet leases and status
// disappear from etcd at one revision; every other node drops its tunnel and routes to it.
import type { StoreClient } from '../store/client'
import { type RemovedNode, removeNode } from '../store/node-remove'
import { type OutputFormat, formatJson, formatTable } from './output'

export const nodeRemoveHelp = 'podmeshctl node remove <name>   delete a node\'s record, subnet leases and status\n'

/** Thrown when there was nothing to remove, so the CLI can exit non-zero. */
export class NodeNotFoundError extends Error {
  readonly code = 'ENODENOTFOUND'
  readonly node: string
  constructor (node: string) {
    super(`node ${node}: no record, subnet lease or status in etcd`)
    this.name = 'NodeNotFoundError'
    this.node = node
  }
}
export const isNodeNotFound = (e: unknown): e is NodeNotFoundError => e instanceof NodeNotFoundError

export async function runNodeRemove (client: StoreClient, prefix: string, name: string, format: OutputFormat): Promise<string> {
  const removed: RemovedNode = await removeNode(client, prefix, name)
  if (!removed.record && removed.subnets.length === 0 && !removed.status) throw new NodeNotFoundError(name)
  if (format === 'json') return formatJson(removed)
  return formatTable([
    ['NODE', 'RECORD', 'SUBNETS', 'STATUS'],
    [name, removed.record ? 'deleted' : '-', removed.subnets.join(',') || '-', removed.status ? 'deleted' : '-']
  ])
}

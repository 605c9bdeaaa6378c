// One consistent read of the cluster for podmeshctl: config, node records and status values at a
// single etcd revision (one range per directory, the later ones pinned to the first's revision).
// Everything is validated; a bad value is listed in `rejected`, never used.
import type { NetworkConfig } from '../config/network'
import type { StoreClient } from '../store/client'
import { storeCall } from '../store/client'
import { readConfig } from '../store/config-store'
import { nodesPrefix, statusPrefix } from '../store/keys'
import type { NodeRecord } from '../store/node-record'
import { parseNodeRecord } from '../store/node-record-parse'
import { type NodeStatus, parseStatus } from '../daemon/status-value'

export interface ClusterRead {
  config: NetworkConfig
  revision: string
  nodes: NodeRecord[]
  statuses: Map<string, NodeStatus>
  rejected: Array<{ key: string, reason: string }>
}

export async function readCluster (client: StoreClient, prefix: string): Promise<ClusterRead> {
  const config = await readConfig(client, prefix)
  const nodesRes = await storeCall(`range ${nodesPrefix(prefix)}`, async () => await client.getAll().prefix(nodesPrefix(prefix)).exec())
  const revision = nodesRes.header.revision
  const statusRes = await storeCall(`range ${statusPrefix(prefix)}`, async () => await client.getAll().prefix(statusPrefix(prefix)).revision(revision).exec())
  const rejected: ClusterRead['rejected'] = []
  const nodes: NodeRecord[] = []
  for (const kv of nodesRes.kvs) {
    const key = kv.key.toString()
    try { nodes.push(parseNodeRecord(key, kv.value.toString(), config)) } catch (e) { rejected.push({ key, reason: (e as Error).message }) }
  }
  nodes.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  const statuses = new Map<string, NodeStatus>()
  for (const kv of statusRes.kvs) {
    const key = kv.key.toString()
    try {
      const s = parseStatus(key, kv.value.toString())
      if (`${statusPrefix(prefix)}${s.node}` !== key) throw new Error(`status of "${s.node}" stored under another node's key`)
      statuses.set(s.node, s)
    } catch (e) { rejected.push({ key, reason: (e as Error).message }) }
  }
  return { config, revision, nodes, statuses, rejected }
}

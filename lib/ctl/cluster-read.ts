// One consistent read of the cluster for podmeshctl: config, node records and status values at a
// single etcd revision (one range per directory, the later ones pinned to the first's revision).
// Everything is validated; a bad value is listed in `rejected`, never used. The daemons' claim rule
// (lib/mesh/claims.ts) is applied to the records: a record that claims a key, MAC or pod CIDR an
// earlier record holds is in `skipped` with its `conflicts`, not in `nodes`, as on every node.
import type { NetworkConfig } from '../config/network'
import type { StoreClient } from '../store/client'
import { storeCall } from '../store/client'
import { readConfigRevision } from '../store/config-store'
import { nodesPrefix, statusPrefix } from '../store/keys'
import type { NodeRecord } from '../store/node-record'
import { parseNodeRecord } from '../store/node-record-parse'
import { type NodeStatus, parseStatus } from '../store/status-value'
import { type Conflict, resolveClaims } from '../mesh/claims'

export interface ClusterRead {
  config: NetworkConfig
  /** Mod revision of the config key: the config etcd holds now (nodes report the one they run). */
  configRevision: string
  revision: string
  /** Records the nodes use, by name. */
  nodes: NodeRecord[]
  /** Valid records every node skips because an earlier record holds what they claim, by name. */
  skipped: NodeRecord[]
  conflicts: Conflict[]
  statuses: Map<string, NodeStatus>
  rejected: Array<{ key: string, reason: string }>
}

export async function readCluster (client: StoreClient, prefix: string): Promise<ClusterRead> {
  const { config, revision: configRevision } = await readConfigRevision(client, prefix)
  const nodesRes = await storeCall(`range ${nodesPrefix(prefix)}`, async () => await client.getAll().prefix(nodesPrefix(prefix)).exec())
  const revision = nodesRes.header.revision
  const statusRes = await storeCall(`range ${statusPrefix(prefix)}`, async () => await client.getAll().prefix(statusPrefix(prefix)).revision(revision).exec())
  const rejected: ClusterRead['rejected'] = []
  const records: Array<{ record: NodeRecord, createRevision: bigint }> = []
  for (const kv of nodesRes.kvs) {
    const key = kv.key.toString()
    try { records.push({ record: parseNodeRecord(key, kv.value.toString(), config), createRevision: BigInt(kv.create_revision) }) } catch (e) { rejected.push({ key, reason: (e as Error).message }) }
  }
  const byName = (a: NodeRecord, b: NodeRecord): number => a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  const verdict = resolveClaims(records)
  const nodes = verdict.accepted.sort(byName)
  const held = new Set(nodes)
  const skipped = records.map(r => r.record).filter(r => !held.has(r)).sort(byName)
  const statuses = new Map<string, NodeStatus>()
  for (const kv of statusRes.kvs) {
    const key = kv.key.toString()
    try {
      const s = parseStatus(key, kv.value.toString())
      if (`${statusPrefix(prefix)}${s.node}` !== key) throw new Error(`status of "${s.node}" stored under another node's key`)
      statuses.set(s.node, s)
    } catch (e) { rejected.push({ key, reason: (e as Error).message }) }
  }
  return { config, configRevision, revision, nodes, skipped, conflicts: verdict.conflicts, statuses, rejected }
}

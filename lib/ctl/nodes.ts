// `podmeshctl nodes`: one row per node record — subnets, endpoint, key fingerprint, location,
// age (since it joined), health (from its status key) and, for a record every node skips, the
// conflict: what it shares with which earlier node.
import type { StoreClient } from '../store/client'
import { readCluster, type ClusterRead } from './cluster-read'
import { formatAge, healthOf, type Health } from './mesh-view'
import type { NodeRecord } from '../store/node-record'
import { conflictLabel, type Conflict } from '../mesh/claims'
import { type OutputFormat, formatJson, formatTable } from './output'

export const nodesHelp = 'podmeshctl nodes   list nodes: subnets, endpoint, key, location, age, health, conflict (-o json|table)\n'

export interface NodeRow {
  name: string
  podCIDRs: string[]
  endpoint: string
  /** First 8 characters of the WireGuard public key ('' without one). */
  key: string
  location?: string
  since?: string
  ageSeconds?: number
  health: Health
  generation: number
  /** Present when every node skips this record: what it shares with which earlier node. */
  conflicts?: Array<Omit<Conflict, 'node'>>
}

export function nodeRows (c: ClusterRead, now: number): NodeRow[] {
  const all: NodeRecord[] = [...c.nodes, ...c.skipped].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return all.map(n => ({
    name: n.name,
    podCIDRs: [...n.podCIDRs],
    endpoint: n.endpoint,
    key: (n.publicKey ?? '').slice(0, 8),
    ...(n.location !== undefined ? { location: n.location } : {}),
    ...(n.since !== undefined ? { since: n.since, ageSeconds: Math.max(0, Math.floor((now - Date.parse(n.since)) / 1000)) } : {}),
    health: healthOf(c.statuses.get(n.name), now),
    generation: n.generation,
    ...(c.conflicts.some(x => x.node === n.name)
      ? { conflicts: c.conflicts.filter(x => x.node === n.name).map(({ holder, what, value }) => ({ holder, what, value })) }
      : {})
  }))
}

export async function runNodes (client: StoreClient, prefix: string, format: OutputFormat): Promise<string> {
  const rows = nodeRows(await readCluster(client, prefix), Date.now())
  if (format === 'json') return formatJson(rows)
  return formatTable([
    ['NAME', 'SUBNETS', 'ENDPOINT', 'KEY', 'LOCATION', 'AGE', 'HEALTH', 'CONFLICT'],
    ...rows.map(r => [r.name, r.podCIDRs.join(','), r.endpoint, r.key || '-', r.location ?? '-', r.ageSeconds === undefined ? '-' : formatAge(r.ageSeconds), r.health,
      r.conflicts === undefined ? '-' : `!! skipped: ${r.conflicts.map(x => conflictLabel({ node: r.name, ...x })).join(', ')}`])
  ])
}

// `podmeshctl nodes`: one row per node record — subnets, endpoint, key fingerprint, location,
// age (since it joined) and health (from its status key).
import type { StoreClient } from '../store/client'
import { readCluster, type ClusterRead } from './cluster-read'
import { formatAge, healthOf, type Health } from './mesh-view'
import { type OutputFormat, formatJson, formatTable } from './output'

export const nodesHelp = 'podmeshctl nodes   list nodes: subnets, endpoint, key, location, age, health (-o json|table)\n'

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
}

export function nodeRows (c: ClusterRead, now: number): NodeRow[] {
  return c.nodes.map(n => ({
    name: n.name,
    podCIDRs: [...n.podCIDRs],
    endpoint: n.endpoint,
    key: (n.publicKey ?? '').slice(0, 8),
    ...(n.location !== undefined ? { location: n.location } : {}),
    ...(n.since !== undefined ? { since: n.since, ageSeconds: Math.max(0, Math.floor((now - Date.parse(n.since)) / 1000)) } : {}),
    health: healthOf(c.statuses.get(n.name), now),
    generation: n.generation
  }))
}

export async function runNodes (client: StoreClient, prefix: string, format: OutputFormat): Promise<string> {
  const rows = nodeRows(await readCluster(client, prefix), Date.now())
  if (format === 'json') return formatJson(rows)
  return formatTable([
    ['NAME', 'SUBNETS', 'ENDPOINT', 'KEY', 'LOCATION', 'AGE', 'HEALTH'],
    ...rows.map(r => [r.name, r.podCIDRs.join(','), r.endpoint, r.key || '-', r.location ?? '-', r.ageSeconds === undefined ? '-' : formatAge(r.ageSeconds), r.health])
  ])
}

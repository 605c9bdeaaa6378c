// `podmeshctl topology -o dot|json|table`: the mesh graph from the same planner the daemons run
// (nodes with their subnets, edges labelled with the transport). DOT renders with Graphviz.
import type { StoreClient } from '../store/client'
import { readCluster } from './cluster-read'
import { topology, topologyDot } from './mesh-view'
import { formatJson, formatTable } from './output'

export const topologyHelp = 'podmeshctl topology   the mesh graph (-o dot|json|table)\n'

export type TopologyFormat = 'dot' | 'json' | 'table'

export async function runTopology (client: StoreClient, prefix: string, format: TopologyFormat): Promise<string> {
  const c = await readCluster(client, prefix)
  const t = topology(c.config, c.nodes)
  if (format === 'json') return formatJson(t)
  if (format === 'dot') return topologyDot(t)
  return formatTable([
    ['FROM', 'TO', 'TRANSPORT'],
    ...t.edges.map(e => [e.from, e.to, e.transport]),
    ...t.skipped.map(s => [s.from, s.to, `none (${s.reason})`])
  ])
}

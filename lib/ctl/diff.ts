// `podmeshctl diff [node]`, run on a node (in its network namespace): the desired state the
// daemon would compute from etcd — identity taken from the node's own record — against what the
// kernel holds, planned with pruning on, one line per difference; in a cluster with service
// ranges, also the service table (service-diff.ts). Exit 1 when they differ.
import { hostname } from 'node:os'
import type { StoreClient } from '../store/client'
import { Rtnl } from '../dataplane/rtnl'
import { Kernel } from '../dataplane/kernel'
import { plan, describePlan } from '../mesh/plan'
import { desiredState } from '../mesh/desired'
import { readCluster } from './cluster-read'
import { identityOf } from './mesh-view'
import { serviceDifferences } from './service-diff'
import { type OutputFormat, formatJson } from './output'
import { NodeNotFoundError } from './node-not-found'
import { NODE_FLAGS } from '../config/node-flags'
import { nodeArgOptions, nodeFlagsHelp } from './node-flags'

/** The daemon's device flags, so diff looks at the devices podmeshd made. */
export const DIFF_FLAGS = ['wgInterface', 'vxlanInterface'] as const

export const diffHelp = `podmeshctl diff [node]   on a node: desired state (etcd) vs. the kernel (routes, tunnels, service table); exit 1 when they differ
${nodeFlagsHelp(DIFF_FLAGS)}`

export const diffOptions = nodeArgOptions(DIFF_FLAGS)

export interface DiffOptions {
  node?: string
  wgInterface?: string
  vxlanInterface?: string
}

export interface DiffResult { node: string, revision: string, inSync: boolean, differences: string[], skipped: Array<{ node: string, reason: string }> }

export async function computeDiff (client: StoreClient, prefix: string, o: DiffOptions): Promise<DiffResult> {
  const name = o.node ?? hostname()
  const c = await readCluster(client, prefix)
  // A skipped record is still the node's own statement of who it is.
  const own = [...c.nodes, ...c.skipped].find(n => n.name === name)
  if (own === undefined) throw new NodeNotFoundError(name, prefix)
  const devices = { wireguard: o.wgInterface ?? NODE_FLAGS.wgInterface.default, vxlan: o.vxlanInterface ?? NODE_FLAGS.vxlanInterface.default }
  const d = desiredState(c.config, c.nodes, identityOf(c.config, own, devices))
  const rtnl = Rtnl.open()
  try {
    const observed = await new Kernel({ rtnl, devices, wgMode: 'auto' }).observe()
    const differences = describePlan(plan(d.state, observed, { prune: true }))
    if (c.config.services !== undefined) differences.push(...await serviceDifferences(client, prefix, c.nodes, own))
    return { node: name, revision: c.revision, inSync: differences.length === 0, differences, skipped: d.skipped }
  } finally {
    rtnl.close()
  }
}

export async function runDiff (client: StoreClient, prefix: string, format: OutputFormat, o: DiffOptions): Promise<{ text: string, exitCode: number }> {
  const r = await computeDiff(client, prefix, o)
  const exitCode = r.inSync ? 0 : 1
  if (format === 'json') return { text: formatJson(r), exitCode }
  const head = r.inSync ? `${r.node}: kernel matches the desired state (etcd revision ${r.revision})\n` : ''
  return { text: head + r.differences.map(l => `${r.node}: ${l}\n`).join(''), exitCode }
}

// What podmeshctl derives from a cluster read, with the daemon's own planner: each node's
// identity as its record states it, its desired peers, node health from its status, and the
// topology graph. Pure: `now` is passed in.
import type { NetworkConfig } from '../config/network'
import type { NodeRecord } from '../store/node-record'
import type { NodeStatus } from '../store/status-value'
import { desiredState, primaryTransport, type Desired, type LocalIdentity, type Transport } from '../mesh/desired'
import { underlayMtuOf } from '../mesh/mtu'
import { parseEndpoint } from '../store/endpoint'
import { NODE_FLAGS } from '../config/node-flags'

/** A status older than this (three missed 10 s reports) is stale: the node stopped reporting. */
export const STATUS_STALE_MS = 30_000
/** A WireGuard handshake older than this is stale (a live session re-handshakes every 2 min). */

export type Health = 'ok' | 'degraded' | 'not-ready' | 'stale' | 'no-status'

/**
 * The identity a node's record implies (device names do not matter for peers and edges). The
 * underlay MTU is the one behind the record's published MTU; a path MTU the node discovered
 * itself is not in its record.
 */
export function identityOf (config: NetworkConfig, n: NodeRecord, devices: LocalIdentity['devices'] = { wireguard: NODE_FLAGS.wgInterface.default, vxlan: NODE_FLAGS.vxlanInterface.default }): LocalIdentity {
  const endpoint = parseEndpoint(n.endpoint)
  return {
    name: n.name,
    podCIDRs: n.podCIDRs,
    underlayIp: endpoint.ip,
    publicKey: n.publicKey ?? '',
    underlayMtu: underlayMtuOf(primaryTransport(config), endpoint.family, n.mtu),
    ...(n.location !== undefined ? { location: n.location } : {}),
    ...(n.vxlan !== undefined ? { vxlanMac: n.vxlan.mac } : {}),
    devices
  }
}

export const desiredFor = (config: NetworkConfig, nodes: readonly NodeRecord[], n: NodeRecord): Desired =>
  desiredState(config, nodes, identityOf(config, n))

export function healthOf (s: NodeStatus | undefined, now: number): Health {
  if (s === undefined) return 'no-status'
  if (now - Date.parse(s.updatedAt) > STATUS_STALE_MS) return 'stale'
  if (s.degraded) return 'degraded'
  if (!s.ready) return 'not-ready'
  return 'ok'
}

/** "3s", "4m", "2h", "5d" — ages for tables. */
export function formatAge (seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-'
  if (seconds < 120) return `${Math.floor(seconds)}s`
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`
  return `${Math.floor(seconds / 86400)}d`
}

export function formatBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n; let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i] ?? ''}`
}

export interface TopologyNode { name: string, podCIDRs: string[], endpoint: string, location?: string }
export interface TopologyEdge { from: string, to: string, transport: Transport }
export interface Topology { nodes: TopologyNode[], edges: TopologyEdge[], skipped: Array<{ from: string, to: string, reason: string }> }

/** The mesh graph: one undirected edge per pair that both sides' desired states connect. */
export function topology (config: NetworkConfig, nodes: readonly NodeRecord[]): Topology {
  const edges: TopologyEdge[] = []
  const skipped: Topology['skipped'] = []
  // A tunnel works only when both ends configure it: one-sided pairs are no edge.
  const wants = new Map<string, Transport>()
  for (const n of nodes) {
    const d = desiredFor(config, nodes, n)
    for (const s of d.skipped) skipped.push({ from: n.name, to: s.node, reason: s.reason })
    for (const [peer, transport] of d.transports) wants.set(`${n.name}|${peer}`, transport)
  }
  for (const [k, transport] of wants) {
    const [from = '', to = ''] = k.split('|')
    if (from < to && wants.has(`${to}|${from}`)) edges.push({ from, to, transport })
  }
  edges.sort((x, y) => `${x.from}|${x.to}` < `${y.from}|${y.to}` ? -1 : 1)
  return {
    nodes: nodes.map(n => ({ name: n.name, podCIDRs: [...n.podCIDRs], endpoint: n.endpoint, ...(n.location !== undefined ? { location: n.location } : {}) })),
    edges,
    skipped
  }
}

const q = (s: string): string => `"${s.replace(/["\\]/g, m => `\\${m}`)}"`

/** Graphviz DOT: nodes labelled with name, subnets and endpoint; edges with their transport. */
export function topologyDot (t: Topology): string {
  const lines = ['graph podmesh {', '  node [shape=box, fontname="monospace"];']
  const byLocation = new Map<string, TopologyNode[]>()
  for (const n of t.nodes) {
    const label = [n.name, ...n.podCIDRs, n.endpoint].join('\\n')
    const line = `${q(n.name)} [label="${label.replace(/"/g, '\\"')}"];`
    if (n.location === undefined) lines.push(`  ${line}`)
    else byLocation.set(n.location, [...(byLocation.get(n.location) ?? []), n])
  }
  let i = 0
  for (const [loc, ns] of byLocation) {
    lines.push(`  subgraph cluster_${i++} {`, `    label=${q(loc)};`)
    for (const n of ns) lines.push(`    ${q(n.name)} [label="${[n.name, ...n.podCIDRs, n.endpoint].join('\\n')}"];`)
    lines.push('  }')
  }
  for (const e of t.edges) lines.push(`  ${q(e.from)} -- ${q(e.to)} [label=${q(e.transport)}${e.transport === 'vxlan' ? ', style=dashed' : ''}];`)
  lines.push('}')
  return lines.join('\n') + '\n'
}

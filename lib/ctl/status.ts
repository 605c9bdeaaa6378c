// `podmeshctl status`: per node its health, and per peer what the node's kernel reports
// (handshake age, transfer, endpoint) checked against the desired state the planner derives from
// etcd — missing, unexpected, wrong-endpoint and stale peers stand out. A record every node skips
// (it claims what an earlier record holds) is a row of its own that says so, with no peers.
import type { StoreClient } from '../store/client'
import type { MtuStatus, NodeStatus, ServiceStatus } from '../store/status-value'
import { readCluster, type ClusterRead } from './cluster-read'
// The node and the CLI agree on what is stale: one threshold, the status writer's.
import { HANDSHAKE_STALE_SECONDS } from '../store/status-value'
import { desiredFor, formatAge, formatBytes, healthOf, type Health } from './mesh-view'
import { type OutputFormat, formatJson, formatTable } from './output'
import { type Conflict, describeConflict } from '../mesh/claims'
import { describeDeviceMtu, overrideTooLarge } from '../mesh/mtu'
import { NodeNotFoundError } from './node-not-found'

export const statusHelp = `podmeshctl status [node] [-w]   per node and peer: handshake, transfer, match with the desired state
  ${'-w, --watch'.padEnd(25)} keep watching etcd; show the status again whenever it changes (Ctrl-C ends)
`

export const statusOptions = { watch: { type: 'boolean' as const, short: 'w' } }

/** 'unlisted': the node's status left a healthy peer out to stay small (see MAX_STATUS_PEERS). */
export type PeerState = 'ok' | 'missing' | 'unexpected' | 'endpoint-mismatch' | 'handshake-stale' | 'no-handshake' | 'unknown' | 'unlisted'

export interface PeerRow {
  peer: string
  transport: 'wireguard' | 'vxlan'
  endpoint: string
  /** Seconds since the last handshake (WireGuard); absent when never or not applicable. */
  handshakeAgeSeconds?: number
  rxBytes: number
  txBytes: number
  state: PeerState
  /** The path MTU toward the peer as the node reports it (absent: not known). */
  pathMtu?: number
}

export interface NodeStatusRow {
  node: string
  health: Health
  version?: string
  generation?: number
  revision?: string
  degraded?: boolean
  ready?: boolean
  updatedAt?: string
  lastDegraded?: NodeStatus['lastDegraded']
  /** The config revision the node runs (from its status). */
  configRevision?: string
  /** False when the node runs another config than etcd holds (it needs a restart); absent when unknown. */
  configCurrent?: boolean
  /** True when every desired peer is present, matching, the node runs etcd's config, and no node is flagged. */
  converged: boolean
  peers: PeerRow[]
  /** Present when every node skips this node's record: what it shares with which earlier node. */
  conflicts?: Array<Omit<Conflict, 'node'>>
  /** The node's tunnel device MTUs, the peer that holds one down, and its pods' MTU (from its status). */
  mtu?: MtuStatus
  /** The node's service rules (from its status; clusters with service ranges). */
  services?: ServiceStatus
}

const statusFields = (s: NodeStatus | undefined): Partial<NodeStatusRow> => s === undefined
  ? {}
  : { version: s.version, generation: s.generation, revision: s.revision, degraded: s.degraded, ready: s.ready, updatedAt: s.updatedAt, ...(s.lastDegraded !== undefined ? { lastDegraded: s.lastDegraded } : {}), ...(s.mtu !== undefined ? { mtu: s.mtu } : {}), ...(s.services !== undefined ? { services: s.services } : {}) }

/** Which config the node runs, against the one etcd holds (two configs in one cluster must show). */
const configFields = (s: NodeStatus | undefined, current: string): Pick<NodeStatusRow, 'configRevision' | 'configCurrent'> =>
  s?.configRevision === undefined ? {} : { configRevision: s.configRevision, configCurrent: s.configRevision === current }

export function statusRows (c: ClusterRead, now: number, only?: string): NodeStatusRow[] {
  const out: NodeStatusRow[] = []
  for (const n of c.skipped) {
    if (only !== undefined && n.name !== only) continue
    const s = c.statuses.get(n.name)
    const conflicts = c.conflicts.filter(x => x.node === n.name).map(({ holder, what, value }) => ({ holder, what, value }))
    out.push({ node: n.name, health: healthOf(s, now), ...statusFields(s), ...configFields(s, c.configRevision), converged: false, peers: [], conflicts })
  }
  for (const n of c.nodes) {
    if (only !== undefined && n.name !== only) continue
    const s = c.statuses.get(n.name)
    const health = healthOf(s, now)
    const d = desiredFor(c.config, c.nodes, n)
    const peers: PeerRow[] = []
    const seen = new Set<number>()
    const observed = s?.peers ?? []
    const want: Array<{ node: string, transport: 'wireguard' | 'vxlan', publicKey: string, endpoint: string }> = [
      ...(d.state.wireguard?.peers ?? []).map(p => ({ node: p.node, transport: 'wireguard' as const, publicKey: p.publicKey, endpoint: p.endpoint })),
      ...(d.state.vxlan?.remotes ?? []).map(r => ({ node: r.node, transport: 'vxlan' as const, publicKey: '', endpoint: r.underlayIp }))
    ]
    // WireGuard peers are known by key, VXLAN peers by node name; one index keeps this O(peers).
    const keyOf = (x: { transport: string, publicKey: string, node: string }): string => `${x.transport}|${x.transport === 'wireguard' ? x.publicKey : x.node}`
    const index = new Map<string, number>()
    observed.forEach((o, j) => { if (!index.has(keyOf(o))) index.set(keyOf(o), j) })
    const omitted = (s?.peersOmitted ?? 0) > 0
    for (const w of want) {
      const i = index.get(keyOf(w)) ?? -1
      const o = observed[i]
      if (o === undefined) {
        const state: PeerState = s === undefined ? 'unknown' : omitted ? 'unlisted' : 'missing'
        peers.push({ peer: w.node, transport: w.transport, endpoint: w.endpoint, rxBytes: 0, txBytes: 0, state })
        continue
      }
      seen.add(i)
      const age = o.lastHandshake > 0 ? Math.max(0, Math.floor(now / 1000 - o.lastHandshake)) : undefined
      let state: PeerState = 'ok'
      if (o.endpoint !== w.endpoint) state = 'endpoint-mismatch'
      else if (w.transport === 'wireguard' && age === undefined) state = 'no-handshake'
      else if (w.transport === 'wireguard' && age !== undefined && age > HANDSHAKE_STALE_SECONDS) state = 'handshake-stale'
      peers.push({ peer: w.node, transport: w.transport, endpoint: o.endpoint, ...(age !== undefined ? { handshakeAgeSeconds: age } : {}), rxBytes: o.rxBytes, txBytes: o.txBytes, state, ...(o.pathMtu !== undefined ? { pathMtu: o.pathMtu } : {}) })
    }
    observed.forEach((o, j) => {
      if (seen.has(j)) return
      const age = o.lastHandshake > 0 ? Math.max(0, Math.floor(now / 1000 - o.lastHandshake)) : undefined
      peers.push({ peer: o.node, transport: o.transport, endpoint: o.endpoint, ...(age !== undefined ? { handshakeAgeSeconds: age } : {}), rxBytes: o.rxBytes, txBytes: o.txBytes, state: 'unexpected' })
    })
    out.push({
      node: n.name,
      health,
      ...statusFields(s),
      ...configFields(s, c.configRevision),
      converged: health === 'ok' && s?.configRevision !== undefined && s.configRevision !== c.configRevision ? false : health === 'ok' && peers.every(p => p.state === 'ok' || p.state === 'unlisted'),
      peers
    })
  }
  return out.sort((a, b) => a.node < b.node ? -1 : a.node > b.node ? 1 : 0)
}

/** Whether the cluster read holds a record of that name (used or skipped). */
export const hasNode = (c: ClusterRead, name: string): boolean => [...c.nodes, ...c.skipped].some(n => n.name === name)

export async function runStatus (client: StoreClient, prefix: string, format: OutputFormat, only?: string): Promise<string> {
  const c = await readCluster(client, prefix)
  if (only !== undefined && !hasNode(c, only)) throw new NodeNotFoundError(only, prefix)
  return renderStatus(c, format, Date.now(), only)
}

/** The status of one cluster read as `status` prints it (table or JSON), ages as of `now`. */
export function renderStatus (c: ClusterRead, format: OutputFormat, now: number, only?: string): string {
  const rows = statusRows(c, now, only)
  if (format === 'json') return formatJson(rows)
  // The PATH MTU column appears once some node reports path MTUs (path-MTU discovery).
  const paths = rows.some(r => r.peers.some(p => p.pathMtu !== undefined))
  const table: string[][] = [['NODE', 'HEALTH', 'CONFIG', 'PEER', 'TRANSPORT', 'ENDPOINT', 'HANDSHAKE', 'RX', 'TX', ...(paths ? ['PATH MTU'] : []), 'STATE']]
  const none = paths ? ['-', '-', '-', '-', '-', '-', '-'] : ['-', '-', '-', '-', '-', '-']
  for (const r of rows) {
    const h = r.health === 'ok' ? 'ok' : `${r.health.toUpperCase()}`
    const cfg = r.configRevision === undefined ? '-' : r.configCurrent === true ? r.configRevision : `${r.configRevision} !! old`
    if (r.conflicts !== undefined) table.push([r.node, h, cfg, ...none, '!! skipped'])
    else if (r.peers.length === 0) table.push([r.node, h, cfg, ...none, r.health === 'ok' ? 'ok' : '-'])
    for (const p of r.peers) {
      table.push([r.node, h, cfg, p.peer, p.transport, p.endpoint,
        p.handshakeAgeSeconds === undefined ? (p.transport === 'vxlan' ? 'n/a' : 'never') : `${formatAge(p.handshakeAgeSeconds)} ago`,
        formatBytes(p.rxBytes), formatBytes(p.txBytes), ...(paths ? [p.pathMtu === undefined ? '-' : String(p.pathMtu)] : []), p.state === 'ok' ? 'ok' : `!! ${p.state}`])
    }
  }
  let text = formatTable(table)
  const old = rows.filter(r => r.configCurrent === false)
  if (old.length > 0) {
    text += `config: etcd holds revision ${c.configRevision}; ${old.map(r => `${r.node} runs ${r.configRevision ?? '?'}`).join(', ')}` +
      ' — a config is applied only at start: restart podmeshd on these nodes\n'
  }
  for (const r of rows) {
    for (const x of r.conflicts ?? []) text += `${r.node}: skipped by every node: ${describeConflict({ node: r.node, ...x })}\n`
    if (r.lastDegraded !== undefined) {
      text += `${r.node}: etcd unreachable since ${r.lastDegraded.since}${r.lastDegraded.until !== undefined ? ` until ${r.lastDegraded.until}` : ' (ongoing)'}\n`
    }
    const mtu = mtuLine(r.mtu)
    if (mtu !== undefined) text += `${r.node}: ${mtu}\n`
    const services = servicesLine(r.services)
    if (services !== undefined) text += `${r.node}: ${services}\n`
    if (r.health === 'stale' && r.updatedAt !== undefined) text += `${r.node}: last status ${formatAge((now - Date.parse(r.updatedAt)) / 1000)} ago\n`
  }
  return text
}

/**
 * A line for a node whose tunnel MTU a peer holds down, whose config mtu does not fit, or that
 * has peers behind a narrower path (their routes' MTU); else none.
 */
export function mtuLine (m: MtuStatus | undefined): string | undefined {
  const notable = (m?.devices ?? []).filter(d => d.limitedBy !== undefined || overrideTooLarge(d))
  const narrow = m?.narrow ?? []
  if (m === undefined || (notable.length === 0 && narrow.length === 0)) return undefined
  const parts = notable.map(d => `${overrideTooLarge(d) ? '!! ' : ''}tunnel ${describeDeviceMtu(d.device, d)}`)
  if (narrow.length > 0) {
    parts.push(`narrow paths: ${narrow.map(n => `${n.node} ${n.pathMtu} (routes ${n.routeMtu})`).join(', ')}${m.narrowOmitted !== undefined ? ` and ${m.narrowOmitted} more` : ''}`)
  }
  return `${parts.join('; ')}; pods ${m.pod}`
}

/** A line for a node with service rules: what they hold and when they last matched etcd, or why they do not. */
export function servicesLine (s: ServiceStatus | undefined): string | undefined {
  if (s === undefined) return undefined
  const held = `${s.services} service${s.services === 1 ? '' : 's'}, ${s.endpoints} endpoint${s.endpoints === 1 ? '' : 's'}`
  if (s.failing !== undefined) return `!! service rules not updated: ${s.failing} (last in sync: ${s.syncedAt ?? 'never'}; ${held})`
  return `service rules: ${held}, in sync with etcd at ${s.syncedAt ?? '?'}`
}

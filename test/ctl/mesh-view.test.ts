// The pure parts of podmeshctl's views: health from a status, the status table against the
// desired state, the topology graph and its DOT rendering.
import t from 'tap'
import { config, key, node, nodes } from '../fixtures/mesh'
import { healthOf, topology, topologyDot } from '../../lib/ctl/mesh-view'
import { mtuLine, servicesLine, statusRows } from '../../lib/ctl/status'
import { nodeRows } from '../../lib/ctl/nodes'
import type { ClusterRead } from '../../lib/ctl/cluster-read'
import type { NodeStatus, PeerStatus } from '../../lib/store/status-value'

const NOW = Date.parse('2026-01-01T00:10:00Z')
const three = nodes.slice(0, 3)

const peer = (n: number, over: Partial<PeerStatus> = {}): PeerStatus => ({
  node: `node-${n}`, transport: 'wireguard', publicKey: key(String.fromCharCode(64 + n)), endpoint: `192.0.2.${10 + n}:51820`,
  lastHandshake: NOW / 1000 - 30, rxBytes: 100, txBytes: 200, ...over
})
const status = (n: number, over: Partial<NodeStatus> = {}): NodeStatus => ({
  v: 1, node: `node-${n}`, version: '0.1.0', generation: 1, revision: '7', degraded: false, ready: true,
  updatedAt: new Date(NOW - 5000).toISOString(), peers: [1, 2, 3].filter(p => p !== n).map(p => peer(p)), ...over
})
const read = (statuses: NodeStatus[]): ClusterRead => ({ config: config(), configRevision: '3', revision: '7', nodes: three, skipped: [], conflicts: [], statuses: new Map(statuses.map(s => [s.node, s])), rejected: [] })

t.test('health', async t => {
  const cases: Array<[string, NodeStatus | undefined, string]> = [
    ['no status key', undefined, 'no-status'],
    ['fresh and ready', status(1), 'ok'],
    ['degraded', status(1, { degraded: true }), 'degraded'],
    ['not ready', status(1, { ready: false }), 'not-ready'],
    ['stale beats degraded', status(1, { degraded: true, updatedAt: new Date(NOW - 31_000).toISOString() }), 'stale']
  ]
  for (const [name, s, want] of cases) t.equal(healthOf(s, NOW), want, name)
})

t.test('status rows against the desired state', async t => {
  const cases: Array<{ name: string, statuses: NodeStatus[], node: string, want: Record<string, string>, converged: boolean }> = [
    { name: 'all ok', statuses: [status(1), status(2), status(3)], node: 'node-1', want: { 'node-2': 'ok', 'node-3': 'ok' }, converged: true },
    { name: 'missing peer', statuses: [status(1, { peers: [peer(2)] })], node: 'node-1', want: { 'node-2': 'ok', 'node-3': 'missing' }, converged: false },
    { name: 'stale handshake', statuses: [status(1, { peers: [peer(2), peer(3, { lastHandshake: NOW / 1000 - 600 })] })], node: 'node-1', want: { 'node-2': 'ok', 'node-3': 'handshake-stale' }, converged: false },
    { name: 'never handshaken', statuses: [status(1, { peers: [peer(2), peer(3, { lastHandshake: 0 })] })], node: 'node-1', want: { 'node-2': 'ok', 'node-3': 'no-handshake' }, converged: false },
    { name: 'wrong endpoint', statuses: [status(1, { peers: [peer(2, { endpoint: '192.0.2.99:51820' }), peer(3)] })], node: 'node-1', want: { 'node-2': 'endpoint-mismatch', 'node-3': 'ok' }, converged: false },
    { name: 'unexpected peer', statuses: [status(1, { peers: [peer(2), peer(3), peer(4)] })], node: 'node-1', want: { 'node-2': 'ok', 'node-3': 'ok', 'node-4': 'unexpected' }, converged: false },
    { name: 'no status: peers unknown', statuses: [], node: 'node-2', want: { 'node-1': 'unknown', 'node-3': 'unknown' }, converged: false }
  ]
  for (const c of cases) {
    const row = statusRows(read(c.statuses), NOW, c.node)[0]
    t.ok(row, c.name)
    t.same(Object.fromEntries(row!.peers.map(p => [p.peer, p.state])), c.want, c.name)
    t.equal(row!.converged, c.converged, `${c.name}: converged`)
  }
  const degraded = statusRows(read([status(1, { degraded: true })]), NOW, 'node-1')[0]!
  t.equal(degraded.health, 'degraded')
  t.equal(degraded.converged, false, 'a degraded node is flagged even with its peers ok')
})

t.test('the device MTU and the peer that limits it reach the row, and a line when it matters', async t => {
  const limited = { pod: 1420, devices: [{ device: 'pm0', transport: 'wireguard' as const, mtu: 1420, fits: 1420, limitedBy: { node: 'node-3', family: 6 as const } }] }
  const row = statusRows(read([status(1, { mtu: limited })]), NOW, 'node-1')[0]!
  t.strictSame(row.mtu, limited)
  t.equal(mtuLine(row.mtu), "tunnel pm0 mtu 1420 (node-3's IPv6 endpoint needs it); pods 1420")
  t.equal(mtuLine({ pod: 1440, devices: [{ device: 'pm0', transport: 'wireguard', mtu: 1440, fits: 1440 }] }), undefined, 'nothing limits it: no line')
  t.equal(mtuLine({ pod: 1440, devices: [{ device: 'pm0', transport: 'wireguard', mtu: 1440, fits: 1420, override: 1440, limitedBy: { node: 'node-3', family: 6 } }] }),
    "!! tunnel pm0 mtu 1440 (config) does not fit the current peers' paths: at most 1420 (node-3's IPv6 endpoint needs it); pods 1440")
  t.equal(mtuLine(undefined), undefined)
  t.equal(mtuLine({ pod: 1440, devices: [{ device: 'pm0', transport: 'wireguard', mtu: 1440, fits: 1440 }], narrow: [{ node: 'node-3', pathMtu: 1400, routeMtu: 1328 }, { node: 'node-4', pathMtu: 1400, routeMtu: 1328 }], narrowOmitted: 2 }),
    'narrow paths: node-3 1400 (routes 1328), node-4 1400 (routes 1328) and 2 more; pods 1440', 'peers behind a narrower path, with their routes\' MTU')
})

t.test('which config each node runs: an older one is flagged and not converged', async t => {
  const rows = statusRows(read([status(1, { configRevision: '3' }), status(2, { configRevision: '2', configPending: '3' }), status(3)]), NOW)
  t.strictSame(rows.map(r => [r.node, r.configRevision, r.configCurrent, r.converged]), [
    ['node-1', '3', true, true],
    ['node-2', '2', false, false],
    // A status from a podmeshd before config revisions: unknown, not flagged.
    ['node-3', undefined, undefined, true]
  ])
})

t.test('node rows', async t => {
  const rows = nodeRows({ ...read([status(1)]), nodes: [node(1, { since: new Date(NOW - 3600_000).toISOString() }), node(2)] }, NOW)
  t.same(rows.map(r => [r.name, r.key, r.health, r.ageSeconds]), [['node-1', key('A').slice(0, 8), 'ok', 3600], ['node-2', key('B').slice(0, 8), 'no-status', undefined]])
})

t.test('a record every node skips: its own row says why, and it is nobody\'s peer', async t => {
  // node-9 reuses node-1's key; cluster-read put it in `skipped` by the claim rule.
  const c: ClusterRead = {
    ...read([status(1), status(2), status(3)]),
    skipped: [node(9, { publicKey: key('A') })],
    conflicts: [{ node: 'node-9', holder: 'node-1', what: 'publicKey', value: key('A') }]
  }
  const rows = nodeRows(c, NOW)
  t.strictSame(rows.map(r => r.name), ['node-1', 'node-2', 'node-3', 'node-9'])
  t.strictSame(rows.map(r => r.conflicts), [undefined, undefined, undefined, [{ holder: 'node-1', what: 'publicKey', value: key('A') }]])
  const st = statusRows(c, NOW)
  t.strictSame(st.map(r => [r.node, r.converged, r.peers.length]), [['node-1', true, 2], ['node-2', true, 2], ['node-3', true, 2], ['node-9', false, 0]])
  t.strictSame(st[3]?.conflicts, [{ holder: 'node-1', what: 'publicKey', value: key('A') }])
  t.strictSame(st[3]?.health, 'no-status')
})

t.test('topology', async t => {
  const wg = topology(config(), three)
  t.same(wg.edges, [
    { from: 'node-1', to: 'node-2', transport: 'wireguard' },
    { from: 'node-1', to: 'node-3', transport: 'wireguard' },
    { from: 'node-2', to: 'node-3', transport: 'wireguard' }
  ])
  const mixed = topology(config({ wg: { vxlanWithinLocation: true } }), nodes)
  t.same(mixed.edges.filter(e => e.transport === 'vxlan').map(e => `${e.from}-${e.to}`), ['node-1-node-2', 'node-3-node-4'], 'same location → vxlan')
  t.equal(mixed.edges.length, 6)
  const dot = topologyDot(mixed)
  t.match(dot, /^graph podmesh \{\n/)
  t.match(dot, '"node-1" -- "node-2" [label="vxlan", style=dashed];')
  t.match(dot, '"node-1" -- "node-3" [label="wireguard"];')
  t.match(dot, 'label="east"')
  const noKey = topology(config(), [node(1), node(2, { publicKey: undefined })])
  t.same(noKey.edges, [])
  t.same(noKey.skipped.map(x => [x.from, x.to]), [['node-1', 'node-2']], 'a node without a key is no edge, and the planner says why')
})

t.test('the services line of podmeshctl status', async t => {
  t.equal(servicesLine(undefined), undefined, 'no services in the cluster: no line')
  t.equal(servicesLine({ services: 1, endpoints: 3, syncedAt: '2026-12-06T06:00:00.000Z' }), 'service rules: 1 service, 3 endpoints, in sync with etcd at 2026-12-06T06:00:00.000Z')
  t.equal(servicesLine({ services: 2, endpoints: 1, failing: 'apply: nft -f - failed (exit 1): Error: No such file' }),
    '!! service rules not updated: apply: nft -f - failed (exit 1): Error: No such file (last in sync: never; 2 services, 1 endpoint)')
})

// The status value: built from the daemon's view (peers named from the records), parsed back
// with validation (podmeshctl reads other nodes' status).
import t from 'tap'
import { node, nodes } from '../fixtures/mesh'
import { buildStatus, parseStatus, isStatusValueError, MAX_STATUS_ERROR } from '../../lib/store/status-value'
import type { ObservedState } from '../../lib/mesh/types'

const observed: ObservedState = {
  routes: [],
  wireguard: {
    ifname: 'podmesh0', publicKey: nodes[0]!.publicKey!, listenPort: 51820, mtu: 1420, addresses: [],
    peers: [
      { publicKey: nodes[2]!.publicKey!, endpoint: '192.0.2.13:51820', allowedIps: [], persistentKeepalive: 25, lastHandshake: 1700000000, rxBytes: 5, txBytes: 6 },
      { publicKey: nodes[1]!.publicKey!, endpoint: '192.0.2.12:51820', allowedIps: [], persistentKeepalive: 25, lastHandshake: 0, rxBytes: 0, txBytes: 0 }
    ]
  },
  vxlan: { ifname: 'podmesh-vx', vni: 1, port: 4789, mtu: 1420, mac: '02:00:00:00:00:01', localIp: '192.0.2.11', addresses: [], neighbors: [], fdb: [{ mac: '02:00:00:00:00:04', dst: '192.0.2.14' }, { mac: '00:00:00:00:00:00', dst: '192.0.2.99' }] }
}

t.test('build and parse round-trip', async t => {
  const s = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, observed, nodes }, new Date('2026-01-01T00:00:00Z'))
  t.same(s.peers.map(p => [p.node, p.transport, p.endpoint]), [['node-2', 'wireguard', '192.0.2.12:51820'], ['node-3', 'wireguard', '192.0.2.13:51820'], ['node-4', 'vxlan', '192.0.2.14']])
  t.equal(s.updatedAt, '2026-01-01T00:00:00.000Z')
  t.same(parseStatus('status/node-1', JSON.stringify(s)), s)
  const ld = buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '1', degraded: true, ready: true, lastDegraded: { since: 'a' }, observed: undefined, nodes: [node(1)] }, new Date(0))
  t.same(ld.peers, [])
  t.same(parseStatus('k', JSON.stringify(ld)).lastDegraded, { since: 'a' })
})

t.test('bad values are rejected', async t => {
  const good = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, observed, nodes }, new Date(0))
  const cases: Array<[string, string]> = [
    ['not JSON', '{'],
    ['wrong version', JSON.stringify({ ...good, v: 2 })],
    ['negative generation', JSON.stringify({ ...good, generation: -1 })],
    ['bad time', JSON.stringify({ ...good, updatedAt: 'yesterday' })],
    ['bad peer', JSON.stringify({ ...good, peers: [{ node: 'x' }] })],
    ['peers not a list', JSON.stringify({ ...good, peers: {} })]
  ]
  for (const [name, text] of cases) {
    let err: unknown
    try { parseStatus('status/node-1', text) } catch (e) { err = e }
    t.ok(isStatusValueError(err) && err.key === 'status/node-1', `${name}: ${String(err)}`)
  }
})

t.test('a large cluster\'s status lists at most MAX_STATUS_PEERS, the peers needing attention first', async t => {
  const { MAX_STATUS_PEERS } = await import('../../lib/store/status-value')
  const now = new Date('2026-11-27T12:00:00Z')
  const nowS = now.getTime() / 1000
  const records = Array.from({ length: 600 }, (_, i) => node(2, { name: `n${String(i).padStart(3, '0')}`, publicKey: Buffer.concat([Buffer.from([i >> 8, i & 255]), Buffer.alloc(30, 7)]).toString('base64') }))
  const peers = records.map((r, i) => ({
    publicKey: r.publicKey as string, endpoint: r.endpoint, allowedIps: r.podCIDRs, persistentKeepalive: 25,
    // Five peers never completed a handshake, three are stale: those must be listed.
    lastHandshake: i % 100 === 7 ? 0 : i % 150 === 11 ? nowS - 600 : nowS - 30, rxBytes: 1, txBytes: 1
  }))
  const s = buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '9', degraded: false, ready: true,
    observed: { routes: [], wireguard: { ifname: 'w', publicKey: 'k', listenPort: 1, mtu: 1420, addresses: [], peers } }, nodes: records }, now)
  t.equal(s.peers.length, MAX_STATUS_PEERS)
  t.equal(s.peerCount, 600)
  t.equal(s.peersOmitted, 600 - MAX_STATUS_PEERS)
  const listed = new Set(s.peers.map(p => p.node))
  for (const [i, r] of records.entries()) {
    if (i % 100 === 7 || i % 150 === 11) t.ok(listed.has(r.name), `${r.name} needs attention and is listed`)
  }
  t.ok(JSON.stringify(s).length < 64 * 1024, `value is ${JSON.stringify(s).length} bytes`)
  t.strictSame(parseStatus('status/node-1', JSON.stringify(s)), s, 'round-trips')
})

t.test('more peers needing attention than fit: the first MAX_STATUS_PEERS of them by name, none of the healthy', async t => {
  const { MAX_STATUS_PEERS } = await import('../../lib/store/status-value')
  const now = new Date('2026-11-27T12:00:00Z')
  const nowS = now.getTime() / 1000
  // Names in reverse of the kernel's order; every third peer is healthy, the rest never handshook.
  const records = Array.from({ length: 900 }, (_, i) => node(2, { name: `n${String(899 - i).padStart(3, '0')}`, publicKey: Buffer.concat([Buffer.from([i >> 8, i & 255]), Buffer.alloc(30, 9)]).toString('base64') }))
  const peers = records.map((r, i) => ({ publicKey: r.publicKey as string, endpoint: r.endpoint, allowedIps: r.podCIDRs, persistentKeepalive: 25, lastHandshake: i % 3 === 0 ? nowS - 30 : 0, rxBytes: 1, txBytes: 1 }))
  const s = buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '9', degraded: false, ready: true,
    observed: { routes: [], wireguard: { ifname: 'w', publicKey: 'k', listenPort: 1, mtu: 1420, addresses: [], peers } }, nodes: records }, now)
  const needing = records.filter((_, i) => i % 3 !== 0).map(r => r.name).sort().slice(0, MAX_STATUS_PEERS)
  t.strictSame(s.peers.map(p => p.node), needing)
  t.equal(s.peersOmitted, 900 - MAX_STATUS_PEERS)
})

t.test('conflicts: listed sorted, bounded, validated on the way back', async t => {
  const { MAX_STATUS_CONFLICTS } = await import('../../lib/store/status-value')
  const base = { node: 'node-1', version: 'x', generation: 1, revision: '9', degraded: false, ready: true, observed: undefined, nodes: [node(1)] }
  t.notOk('conflicts' in buildStatus({ ...base, conflicts: [] }, new Date(0)), 'absent without conflicts')
  const two = [
    { node: 'zz', holder: 'node-2', what: 'vxlanMac' as const, value: '02:00:00:00:00:02' },
    { node: 'impostor', holder: 'node-1', what: 'publicKey' as const, value: node(1).publicKey as string }
  ]
  const s = buildStatus({ ...base, conflicts: two }, new Date(0))
  t.strictSame(s.conflicts?.map(c => c.node), ['impostor', 'zz'])
  t.strictSame(parseStatus('k', JSON.stringify(s)), s, 'round-trips')
  const flood = Array.from({ length: 40 }, (_, i) => ({ node: `bad-${String(i).padStart(2, '0')}`, holder: 'node-1', what: 'podCIDR' as const, value: '10.244.1.0/24' }))
  const f = buildStatus({ ...base, conflicts: flood }, new Date(0))
  t.equal(f.conflicts?.length, MAX_STATUS_CONFLICTS)
  t.equal(f.conflictsOmitted, 40 - MAX_STATUS_CONFLICTS)
  for (const bad of [{ conflicts: {} }, { conflicts: [{ node: 'a', holder: 'b', what: 'endpoint', value: 'x' }] }, { conflictsOmitted: -1 }]) {
    let err: unknown
    try { parseStatus('k', JSON.stringify({ ...s, ...bad })) } catch (e) { err = e }
    t.ok(isStatusValueError(err), `rejected: ${JSON.stringify(bad)}`)
  }
})

t.test('the config revision a node runs, and one it has not applied, round-trip', async t => {
  const s = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, configRevision: '5', configPending: '9', observed, nodes }, new Date(0))
  t.equal(s.configRevision, '5')
  t.equal(s.configPending, '9')
  t.strictSame(parseStatus('k', JSON.stringify(s)), s)
  const without = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, configRevision: '5', observed, nodes }, new Date(0))
  t.notOk('configPending' in without, 'no pending revision: the field is absent')
  t.throws(() => parseStatus('k', JSON.stringify({ ...s, configRevision: 5 })), { message: /field "configRevision" missing or malformed/ })
  t.throws(() => parseStatus('k', JSON.stringify({ ...s, configPending: 'soon' })), { message: /field "configPending" missing or malformed/ })
})

t.test('the device MTUs and the peer that limits one round-trip; malformed ones are rejected', async t => {
  const mtu = {
    pod: 1420,
    devices: [
      { device: 'pm0', transport: 'wireguard' as const, mtu: 1420, fits: 1420, limitedBy: { node: 'node-3', family: 6 as const } },
      { device: 'pm0x', transport: 'vxlan' as const, mtu: 1400, fits: 1450, override: 1400 }
    ]
  }
  const s = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, mtu, observed, nodes }, new Date(0))
  t.strictSame(s.mtu, mtu)
  t.strictSame(parseStatus('k', JSON.stringify(s)), s)
  t.notOk('mtu' in buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, observed, nodes }, new Date(0)))
  const bads = [
    { mtu: 1420 },
    { mtu: { pod: 1420 } },
    { mtu: { pod: 1420.5, devices: [] } },
    { mtu: { pod: 1420, devices: [{ ...mtu.devices[0], limitedBy: { node: 'x', family: 5 } }] } },
    { mtu: { pod: 1420, devices: [{ ...mtu.devices[0], transport: 'gre' }] } },
    { mtu: { ...mtu, narrow: { node: 'node-9' } } },
    { mtu: { ...mtu, narrow: [{ node: 'node-9', pathMtu: 1400 }] } },
    { mtu: { ...mtu, narrow: [{ node: 'node-9', pathMtu: 1400, routeMtu: 70000 }] } },
    { mtu: { ...mtu, narrow: Array.from({ length: 33 }, (_, i) => ({ node: `n${i}`, pathMtu: 1400, routeMtu: 1328 })) } },
    { mtu: { ...mtu, narrowOmitted: -1 } }
  ]
  for (const bad of bads) t.throws(() => parseStatus('k', JSON.stringify({ ...s, ...bad })), { message: /field "mtu/ }, JSON.stringify(bad).slice(0, 80))
  const withPaths = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, mtu, observed, nodes, pathMtus: new Map([[s.peers[0]!.node, 1400]]) }, new Date(0))
  t.equal(withPaths.peers[0]?.pathMtu, 1400, 'a known path MTU is on its peer')
  t.ok(withPaths.peers.slice(1).every(p => p.pathMtu === undefined), 'and only there')
  t.strictSame(parseStatus('k', JSON.stringify(withPaths)), withPaths, 'round-trips')
  t.throws(() => parseStatus('k', JSON.stringify({ ...withPaths, peers: [{ ...withPaths.peers[0], pathMtu: 'big' }] })), { message: /field "peers\[0\]/ })
  const narrow = { ...mtu, narrow: [{ node: 'node-9', pathMtu: 1400, routeMtu: 1328 }], narrowOmitted: 3 }
  const withNarrow = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, mtu: narrow, observed, nodes }, new Date(0))
  t.strictSame(parseStatus('k', JSON.stringify(withNarrow)).mtu, narrow, 'narrow paths round-trip')
})

t.test('more peers than fit, few needing attention: those, then the healthy ones first by name', async t => {
  const { MAX_STATUS_PEERS } = await import('../../lib/store/status-value')
  const now = new Date('2026-11-27T12:00:00Z')
  const nowS = now.getTime() / 1000
  // The kernel's order is neither the records' nor the names'.
  const records = Array.from({ length: 700 }, (_, i) => node(2, { name: `n${String((i * 37) % 700).padStart(3, '0')}`, publicKey: Buffer.concat([Buffer.from([i >> 8, i & 255]), Buffer.alloc(30, 5)]).toString('base64') }))
  const order = records.map((_, i) => (i * 113) % 700)
  const peers = order.map(i => ({ publicKey: records[i]!.publicKey as string, endpoint: records[i]!.endpoint, allowedIps: records[i]!.podCIDRs, persistentKeepalive: 25, lastHandshake: i % 50 === 3 ? 0 : nowS - 30, rxBytes: 1, txBytes: 1 }))
  const s = buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '9', degraded: false, ready: true,
    observed: { routes: [], wireguard: { ifname: 'w', publicKey: 'k', listenPort: 1, mtu: 1420, addresses: [], peers } }, nodes: records }, now)
  const needing = records.filter((_, i) => i % 50 === 3).map(r => r.name)
  const healthy = records.filter((_, i) => i % 50 !== 3).map(r => r.name).sort().slice(0, MAX_STATUS_PEERS - needing.length)
  t.strictSame(s.peers.map(p => p.node), [...needing, ...healthy].sort())
})

t.test('the peer directory follows the records: a new records object is read afresh', async t => {
  const first = [node(1), node(2), node(3)]
  const s1 = buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '1', degraded: false, ready: true, observed, nodes: first }, new Date(0))
  t.strictSame(s1.peers.map(p => p.node).sort(), ['node-2', 'node-3'])
  t.strictSame(buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '1', degraded: false, ready: true, observed, nodes: first }, new Date(0)).peers, s1.peers, 'the same records, the same peers')
  // node-3's key moves to a record named node-9: the kernel peer is now node-9's.
  const second = [node(1), node(2), { ...node(3), name: 'node-9' }]
  const s2 = buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '2', degraded: false, ready: true, observed, nodes: second }, new Date(0))
  t.strictSame(s2.peers.map(p => p.node).sort(), ['node-2', 'node-9'])
  // The same records seen from another node: node-1 is a peer there, not itself.
  const s3 = buildStatus({ node: 'node-2', version: 'x', generation: 1, revision: '2', degraded: false, ready: true, observed, nodes: second }, new Date(0))
  // node-2's own key is no peer of its own: the kernel peer holding it is unknown ('?').
  t.strictSame(s3.peers.map(p => p.node).sort(), ['?', 'node-9'], 'directory built for node-2, not reused from node-1')
})

t.test('the listing is in name order as a string sort gives it: unknown peers ("?") among digit- and letter-led names', async t => {
  const { MAX_STATUS_PEERS } = await import('../../lib/store/status-value')
  const now = new Date('2026-12-06T12:00:00Z')
  const nowS = now.getTime() / 1000
  // Names led by digits sort before '?', names led by letters after it.
  const records = Array.from({ length: 400 }, (_, i) => node(2, { name: `${i % 2 === 0 ? '' : 'n'}${String((i * 41) % 400).padStart(3, '0')}`, publicKey: Buffer.concat([Buffer.from([i >> 8, i & 255]), Buffer.alloc(30, 7)]).toString('base64') }))
  const unknown = (i: number): string => Buffer.concat([Buffer.from([9, i]), Buffer.alloc(30, 9)]).toString('base64')
  const peer = (publicKey: string, lastHandshake: number): NonNullable<ObservedState['wireguard']>['peers'][number] =>
    ({ publicKey, endpoint: '192.0.2.9:51820', allowedIps: [], persistentKeepalive: 25, lastHandshake, rxBytes: 1, txBytes: 1 })
  const cases: Array<[string, (i: number) => number]> = [
    ['all healthy', () => nowS - 30],
    ['some need attention', i => i % 9 === 0 ? 0 : nowS - 30],
    ['more need attention than fit', i => i % 3 === 0 ? nowS - 30 : 0]
  ]
  for (const [name, handshake] of cases) {
    const peers = [...records.map((r, i) => peer(r.publicKey as string, handshake(i))), peer(unknown(1), nowS), peer(unknown(2), nowS)].reverse()
    const s = buildStatus({ node: 'node-1', version: 'x', generation: 1, revision: '9', degraded: false, ready: true,
      observed: { routes: [], wireguard: { ifname: 'w', publicKey: 'k', listenPort: 1, mtu: 1420, addresses: [], peers } }, nodes: records }, now)
    // The reference: needing attention by name, then healthy by name, the first that fit, by name.
    const all = peers.map(p => ({ name: records.find(r => r.publicKey === p.publicKey)?.name ?? '?', needs: p.lastHandshake === 0 || !records.some(r => r.publicKey === p.publicKey) }))
    const byName = (a: { name: string }, b: { name: string }): number => a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    const want = [...all.filter(p => p.needs).sort(byName), ...all.filter(p => !p.needs).sort(byName)].slice(0, MAX_STATUS_PEERS).sort(byName).map(p => p.name)
    t.strictSame(s.peers.map(p => p.node), want, name)
    t.equal(s.peerCount, 402, `${name}: every kernel peer counted`)
    t.equal(s.peersOmitted, 402 - MAX_STATUS_PEERS, `${name}: the rest omitted`)
  }
})

t.test('the service rules round-trip; a long error is cut; malformed ones are rejected', async t => {
  const services = { services: 3, endpoints: 7, syncedAt: '2026-12-06T06:00:00.000Z' }
  const s = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, services, observed, nodes }, new Date(0))
  t.strictSame(s.services, services)
  t.strictSame(parseStatus('k', JSON.stringify(s)), s)
  const failing = buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, services: { ...services, failing: `apply: ${'x'.repeat(1000)}` }, observed, nodes }, new Date(0))
  t.equal(failing.services?.failing?.length, MAX_STATUS_ERROR, 'the error is cut to MAX_STATUS_ERROR characters')
  t.strictSame(parseStatus('k', JSON.stringify(failing)), failing)
  const bads = [
    { services: { services: -1, endpoints: 0 } },
    { services: { services: 1 } },
    { services: { services: 1, endpoints: 1.5 } },
    { services: { services: 1, endpoints: 1, syncedAt: 'yesterday' } },
    { services: { services: 1, endpoints: 1, failing: 'x'.repeat(MAX_STATUS_ERROR + 1) } },
    { services: 'many' }
  ]
  for (const bad of bads) t.throws(() => parseStatus('k', JSON.stringify({ ...s, ...bad })), { message: /field "services/ }, JSON.stringify(bad).slice(0, 80))
  t.notOk('services' in buildStatus({ node: 'node-1', version: '0.1.0', generation: 3, revision: '42', degraded: false, ready: true, observed, nodes }, new Date(0)), 'no services: the field is absent')
})

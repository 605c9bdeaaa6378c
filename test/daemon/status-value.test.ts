// The status value: built from the daemon's view (peers named from the records), parsed back
// with validation (podmeshctl reads other nodes' status).
import t from 'tap'
import { node, nodes } from '../fixtures/mesh'
import { buildStatus, parseStatus, isStatusValueError } from '../../lib/daemon/status-value'
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

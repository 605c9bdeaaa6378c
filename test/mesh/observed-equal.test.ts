// samePlanInput: two kernel reads that differ only where the planner never looks (a peer's
// handshake time and counters, the order wireguard-go lists peers in) are the same; any drift the
// planner repairs — a peer's allowed IPs, endpoint or keepalive, a peer gone or added, a route
// gone, changed or added, the device's MTU, key, port or addresses — is not. For each case the
// plan against the altered read is checked too: "same" must mean "the same plan".

import t from 'tap'
import { samePlanInput } from '../../lib/mesh/observed-equal'
import { desiredState } from '../../lib/mesh/desired'
import { plan } from '../../lib/mesh/plan'
import { afterApply } from '../../lib/mesh/expected'
import type { ObservedState, ObservedWireguard } from '../../lib/mesh/types'
import { config, nodes, self } from '../fixtures/mesh'

const d = desiredState(config(), nodes, self()).state
const empty: ObservedState = { routes: [] }
// The kernel as it is after applying the desired state: planning against it is empty.
const base = afterApply(empty, plan(d, empty, { prune: true }), d)
const wg = base.wireguard as ObservedWireguard
const peers = wg.peers
const withWg = (over: Partial<ObservedWireguard>): ObservedState => ({ ...base, wireguard: { ...wg, ...over } })
const withPeer = (i: number, over: Partial<ObservedWireguard['peers'][number]>): ObservedState =>
  withWg({ peers: peers.map((p, j) => j === i ? { ...p, ...over } : p) })

t.test('samePlanInput', async t => {
  t.ok(peers.length >= 2 && base.routes.length >= 2, 'the fixture has peers and routes to alter')
  const same: Array<{ name: string, o: ObservedState }> = [
    { name: 'a structural copy', o: structuredClone(base) },
    { name: 'handshake and counters moved', o: withPeer(0, { lastHandshake: 1_700_000_000, rxBytes: 123, txBytes: 456 }) },
    { name: 'peers in another order (wireguard-go)', o: withWg({ peers: [...peers].reverse() }) }
  ]
  for (const c of same) {
    t.test(`same: ${c.name}`, async t => {
      t.ok(samePlanInput(c.o, base))
      t.ok(samePlanInput(base, c.o), 'both ways')
      t.strictSame(plan(d, c.o, { prune: true }), plan(d, base, { prune: true }), 'and the plan is the same')
    })
  }

  const route0 = base.routes[0]!
  const drift: Array<{ name: string, o: ObservedState }> = [
    { name: "a peer's allowed IPs altered", o: withPeer(0, { allowedIps: peers[0]!.allowedIps.slice(1) }) },
    { name: "a peer's endpoint changed", o: withPeer(1, { endpoint: '192.0.2.250:51999' }) },
    { name: "a peer's keepalive changed", o: withPeer(0, { persistentKeepalive: 0 }) },
    { name: 'a peer removed', o: withWg({ peers: peers.slice(1) }) },
    { name: 'a foreign peer added', o: withWg({ peers: [...peers, { ...peers[0]!, publicKey: 'Zm9yZWlnbi1rZXktZm9yZWlnbi1rZXktZm9yZWlnbi0=' }] }) },
    { name: 'a peer replaced by another (same count)', o: withWg({ peers: [{ ...peers[0]!, publicKey: 'Zm9yZWlnbi1rZXktZm9yZWlnbi1rZXktZm9yZWlnbi0=' }, ...peers.slice(1)] }) },
    { name: 'the device MTU changed', o: withWg({ mtu: wg.mtu - 100 }) },
    { name: 'the device key changed', o: withWg({ publicKey: '' }) },
    { name: 'the listen port changed', o: withWg({ listenPort: wg.listenPort + 1 }) },
    { name: 'an address removed', o: withWg({ addresses: wg.addresses.slice(1) }) },
    { name: 'the device gone', o: { routes: base.routes } },
    { name: 'a route deleted', o: { ...base, routes: base.routes.slice(1) } },
    { name: 'a route given an MTU', o: { ...base, routes: [{ ...route0, mtu: 1300 }, ...base.routes.slice(1)] } },
    { name: "a route's source changed", o: { ...base, routes: [{ ...route0, src: '10.244.9.0' }, ...base.routes.slice(1)] } },
    { name: 'a stale route of ours added', o: { ...base, routes: [...base.routes, { ...route0, dst: '10.244.99.0/24' }] } },
    { name: 'a VXLAN device appeared', o: { ...base, vxlan: { ifname: 'pmx', vni: 1, port: 4789, mtu: 1450, mac: '02:00:00:00:00:09', localIp: '192.0.2.11', addresses: [], fdb: [], neighbors: [] } } }
  ]
  for (const c of drift) {
    t.test(`drift: ${c.name}`, async t => {
      t.notOk(samePlanInput(c.o, base))
      t.notOk(samePlanInput(base, c.o), 'both ways')
      t.notSame(plan(d, c.o, { prune: true }), plan(d, base, { prune: true }), 'the planner sees it too: skipping it would hide drift')
    })
  }
})

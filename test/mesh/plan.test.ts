import t from 'tap'
import { desiredState } from '../../lib/mesh/desired'
import { plan, planWireguard, describePlan } from '../../lib/mesh/plan'
import { planIsEmpty, type DesiredState, type ObservedState } from '../../lib/mesh/types'
import { config, key, node, nodes, self } from '../fixtures/mesh'

const want = (cfg = config(), ns = nodes): DesiredState => desiredState(cfg, ns, self()).state

/** What the kernel would report after applying `d` exactly. */
function observedFrom (d: DesiredState): ObservedState {
  const o: ObservedState = { routes: d.routes.map(r => ({ ...r })) }
  if (d.wireguard !== undefined) {
    const { node: _n, ...w } = { node: '', ...d.wireguard }
    o.wireguard = {
      ifname: w.ifname, publicKey: w.publicKey, listenPort: w.listenPort, mtu: w.mtu, addresses: [...w.addresses],
      peers: w.peers.map(({ node: _node, ...p }) => ({ ...p, lastHandshake: 0, rxBytes: 0, txBytes: 0 }))
    }
  }
  if (d.vxlan !== undefined) {
    const v = d.vxlan
    o.vxlan = {
      ifname: v.ifname, vni: v.vni, port: v.port, mtu: v.mtu, mac: v.mac, localIp: v.localIp, addresses: [...v.addresses],
      fdb: v.remotes.map(r => ({ mac: r.mac, dst: r.underlayIp })),
      neighbors: v.remotes.flatMap(r => r.tunnelIps.map(ip => ({ ip, mac: r.mac })))
    }
  }
  return o
}

const cases: Array<{ name: string, want: DesiredState, have: ObservedState, prune?: boolean, lines: string[] }> = [
  {
    name: 'in sync: empty plan',
    want: want(),
    have: observedFrom(want()),
    lines: []
  },
  {
    name: 'fresh node: create device, all peers, all routes',
    want: want(config(), nodes.slice(0, 2)),
    have: { routes: [] },
    lines: [
      'device pm-wg: create',
      'device pm-wg: add address 10.244.1.0/32',
      'device pm-wg: add address fd00:10:244:1::/128',
      `peer node-2 (${key('B').slice(0, 8)}…): set endpoint 192.0.2.12:51820 allowed-ips 10.244.2.0/24,fd00:10:244:2::/64`,
      'route 10.244.2.0/24 dev pm-wg src 10.244.1.0: add',
      'route fd00:10:244:2::/64 dev pm-wg src fd00:10:244:1::: add'
    ]
  },
  {
    name: 'a node joins: only its peer and routes are added; unchanged peers untouched',
    want: want(config(), nodes.slice(0, 3)),
    have: observedFrom(want(config(), nodes.slice(0, 2))),
    lines: [
      `peer node-3 (${key('C').slice(0, 8)}…): set endpoint 192.0.2.13:51820 allowed-ips 10.244.3.0/24,fd00:10:244:3::/64`,
      'route 10.244.3.0/24 dev pm-wg src 10.244.1.0: add',
      'route fd00:10:244:3::/64 dev pm-wg src fd00:10:244:1::: add'
    ]
  },
  {
    name: 'a node leaves: its peer and routes are removed',
    want: want(config(), nodes.slice(0, 2)),
    have: observedFrom(want(config(), nodes.slice(0, 3))),
    lines: [
      `peer ${key('C').slice(0, 8)}…: remove`,
      'route 10.244.3.0/24 dev pm-wg src 10.244.1.0: remove',
      'route fd00:10:244:3::/64 dev pm-wg src fd00:10:244:1::: remove'
    ]
  },
  {
    name: 'without prune (etcd away, or before a full sync) nothing is removed',
    want: want(config(), nodes.slice(0, 2)),
    have: observedFrom(want(config(), nodes.slice(0, 3))),
    prune: false,
    lines: []
  },
  {
    name: 'endpoint change: one upsert, routes untouched',
    want: want(config(), [node(1), node(2, { endpoint: '192.0.2.99:51820' })]),
    have: observedFrom(want(config(), nodes.slice(0, 2))),
    lines: [`peer node-2 (${key('B').slice(0, 8)}…): set endpoint 192.0.2.99:51820 allowed-ips 10.244.2.0/24,fd00:10:244:2::/64`]
  },
  {
    name: 'drift: a route and a peer deleted by hand come back',
    want: want(config(), nodes.slice(0, 2)),
    have: (() => { const o = observedFrom(want(config(), nodes.slice(0, 2))); o.routes.shift(); o.wireguard!.peers = []; return o })(),
    lines: [
      `peer node-2 (${key('B').slice(0, 8)}…): set endpoint 192.0.2.12:51820 allowed-ips 10.244.2.0/24,fd00:10:244:2::/64`,
      'route 10.244.2.0/24 dev pm-wg src 10.244.1.0: add'
    ]
  },
  {
    name: 'a foreign peer on our device is removed on a full sync',
    want: want(config(), [node(1)]),
    have: (() => { const o = observedFrom(want(config(), [node(1)])); o.wireguard!.peers.push({ publicKey: key('Z'), endpoint: '', allowedIps: [], persistentKeepalive: 0, lastHandshake: 0, rxBytes: 0, txBytes: 0 }); return o })(),
    lines: [`peer ${key('Z').slice(0, 8)}…: remove`]
  },
  {
    name: 'IPv6 endpoint written differently by the kernel is not a change',
    want: want(config(), [node(1), node(2, { endpoint: '[2001:db8::12]:51820' })]),
    have: (() => { const o = observedFrom(want(config(), [node(1), node(2, { endpoint: '[2001:db8::12]:51820' })])); o.wireguard!.peers[0]!.endpoint = '[2001:0db8:0:0::12]:51820'; return o })(),
    lines: []
  },
  {
    // `wg show dump` prints an endpoint learned by roaming to a link-local address with its scope.
    name: 'a roamed link-local endpoint with a scope (%eth0) is replaced, not a throw',
    want: want(config(), [node(1), node(2, { endpoint: '[2001:db8::12]:51820' })]),
    have: (() => { const o = observedFrom(want(config(), [node(1), node(2, { endpoint: '[2001:db8::12]:51820' })])); o.wireguard!.peers[0]!.endpoint = '[fe80::1%eth0]:51820'; return o })(),
    lines: [`peer node-2 (${key('B').slice(0, 8)}…): set endpoint [2001:db8::12]:51820 allowed-ips 10.244.2.0/24,fd00:10:244:2::/64`]
  },
  {
    name: 'vxlan: a joining node adds fdb, neighbours and onlink routes only',
    want: want(config({ type: 'vxlan' }), nodes.slice(0, 3)),
    have: observedFrom(want(config({ type: 'vxlan' }), nodes.slice(0, 2))),
    lines: [
      'fdb 02:00:00:00:00:03 dst 192.0.2.13: add',
      'neighbour 10.244.3.0 lladdr 02:00:00:00:00:03: add',
      'neighbour fd00:10:244:3:: lladdr 02:00:00:00:00:03: add',
      'route 10.244.3.0/24 dev pm-vx via 10.244.3.0 onlink src 10.244.1.0: add',
      'route fd00:10:244:3::/64 dev pm-vx via fd00:10:244:3:: onlink src fd00:10:244:1::: add'
    ]
  },
  {
    name: 'vxlan: a changed VNI re-creates the device and re-adds everything on it',
    want: want(config({ type: 'vxlan', vxlan: { vni: 9, port: 4789 } }), nodes.slice(0, 2)),
    have: observedFrom(want(config({ type: 'vxlan' }), nodes.slice(0, 2))),
    lines: [
      'device pm-vx: re-create vxlan vni 9 port 4789 local 192.0.2.11',
      'device pm-vx: add address 10.244.1.0/32',
      'device pm-vx: add address fd00:10:244:1::/128',
      'fdb 02:00:00:00:00:02 dst 192.0.2.12: add',
      'neighbour 10.244.2.0 lladdr 02:00:00:00:00:02: add',
      'neighbour fd00:10:244:2:: lladdr 02:00:00:00:00:02: add',
      'route 10.244.2.0/24 dev pm-vx via 10.244.2.0 onlink src 10.244.1.0: add',
      'route fd00:10:244:2::/64 dev pm-vx via fd00:10:244:2:: onlink src fd00:10:244:1::: add'
    ]
  },
  {
    name: "vxlan: this node's underlay address moved: re-created with the new local IP, everything on it re-added in the same plan",
    want: desiredState(config({ type: 'vxlan' }), nodes.slice(0, 2), self({ underlayIp: '192.0.2.111' })).state,
    have: observedFrom(want(config({ type: 'vxlan' }), nodes.slice(0, 2))),
    lines: [
      'device pm-vx: re-create vxlan vni 1 port 4789 local 192.0.2.111',
      'device pm-vx: add address 10.244.1.0/32',
      'device pm-vx: add address fd00:10:244:1::/128',
      'fdb 02:00:00:00:00:02 dst 192.0.2.12: add',
      'neighbour 10.244.2.0 lladdr 02:00:00:00:00:02: add',
      'neighbour fd00:10:244:2:: lladdr 02:00:00:00:00:02: add',
      'route 10.244.2.0/24 dev pm-vx via 10.244.2.0 onlink src 10.244.1.0: add',
      'route fd00:10:244:2::/64 dev pm-vx via fd00:10:244:2:: onlink src fd00:10:244:1::: add'
    ]
  },
  {
    name: "wireguard: this node's underlay address moved: nothing to do here (it listens on every address)",
    want: desiredState(config(), nodes.slice(0, 2), self({ underlayIp: '192.0.2.111' })).state,
    have: observedFrom(want(config(), nodes.slice(0, 2))),
    lines: []
  },
  {
    name: "vxlan: a peer's underlay address moved: only its FDB entry follows (the add replaces the MAC's entry)",
    want: want(config({ type: 'vxlan' }), [node(1), node(2, { endpoint: '192.0.2.112:51820' })]),
    have: observedFrom(want(config({ type: 'vxlan' }), nodes.slice(0, 2))),
    lines: ['fdb 02:00:00:00:00:02 dst 192.0.2.112: add']
  },
  {
    name: "vxlan: a peer's underlay address moved while nothing is pruned: its FDB entry still follows",
    want: want(config({ type: 'vxlan' }), [node(1), node(2, { endpoint: '192.0.2.112:51820' })]),
    have: observedFrom(want(config({ type: 'vxlan' }), nodes.slice(0, 3))),
    prune: false,
    lines: ['fdb 02:00:00:00:00:02 dst 192.0.2.112: add']
  },
  {
    name: 'mixed mode: a node moving location moves its routes between devices',
    want: want(config({ wg: { vxlanWithinLocation: true } }), [node(1), node(2, { location: 'west' })]),
    have: observedFrom(want(config({ wg: { vxlanWithinLocation: true } }), [node(1), node(2)])),
    lines: [
      `peer node-2 (${key('B').slice(0, 8)}…): set endpoint 192.0.2.12:51820 allowed-ips 10.244.2.0/24,fd00:10:244:2::/64`,
      'fdb 02:00:00:00:00:02 dst 192.0.2.12: remove',
      'neighbour 10.244.2.0 lladdr 02:00:00:00:00:02: remove',
      'neighbour fd00:10:244:2:: lladdr 02:00:00:00:00:02: remove',
      'route 10.244.2.0/24 dev pm-vx via 10.244.2.0 onlink src 10.244.1.0: remove',
      'route fd00:10:244:2::/64 dev pm-vx via fd00:10:244:2:: onlink src fd00:10:244:1::: remove',
      'route 10.244.2.0/24 dev pm-wg src 10.244.1.0: add',
      'route fd00:10:244:2::/64 dev pm-wg src fd00:10:244:1::: add'
    ]
  },
  {
    name: 'backend switched away from wireguard: its device is deleted',
    want: want(config({ type: 'vxlan' }), [node(1)]),
    have: { ...observedFrom(want(config(), [node(1)])), vxlan: observedFrom(want(config({ type: 'vxlan' }), [node(1)])).vxlan },
    lines: ['device pm-wg: delete']
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const p = plan(c.want, c.have, { prune: c.prune ?? true })
    t.strictSame(describePlan(p), c.lines)
    t.equal(planIsEmpty(p), c.lines.length === 0, 'planIsEmpty agrees with the description')
  })
}

t.test('a key mismatch on an adopted device reconfigures it', async t => {
  const d = want(config(), [node(1)])
  const o = observedFrom(d)
  o.wireguard!.publicKey = key('Q')
  const p = planWireguard(d.wireguard!, o.wireguard)
  t.equal(p.configure, true)
  t.equal(p.create, false)
})

t.test('planning 5,000 peers against an in-sync kernel finds nothing to do', async t => {
  const many = [node(1), ...Array.from({ length: 5000 }, (_, i) => node(2, {
    name: `n${i}`, publicKey: Buffer.alloc(32, 0).fill(i % 256, 0, 1).fill(i >> 8, 1, 2).toString('base64'),
    podCIDRs: [`10.${(i >> 8) + 100}.${i & 255}.0/24`], endpoint: `198.51.100.${i % 250 + 1}:51820` // not 192.0.2.x: 192.0.2.11 is this node's own underlay, skipped
  }))]
  const cfg = config()
  const d = desiredState({ ...cfg, ipv4: { cidr: '10.0.0.0/8', subnetLen: 24 } }, many, self({ podCIDRs: ['10.244.1.0/24'] })).state
  t.equal(d.wireguard?.peers.length, 5000)
  t.ok(planIsEmpty(plan(d, observedFrom(d), { prune: true })))
})

t.test('afterApply: planning again against the folded state finds nothing to do', async t => {
  const { afterApply } = await import('../../lib/mesh/expected')
  for (const c of cases) {
    if (c.prune === false) continue
    const p = plan(c.want, c.have, { prune: true })
    const folded = afterApply(c.have, p, c.want)
    t.strictSame(describePlan(plan(c.want, folded, { prune: true })), [], c.name)
  }
})

t.test('afterApply keeps handshakes of untouched and updated peers', async t => {
  const { afterApply } = await import('../../lib/mesh/expected')
  const before = observedFrom(want(config(), nodes.slice(0, 3)))
  before.wireguard!.peers.forEach((p, i) => { p.lastHandshake = 1000 + i })
  const target = want(config(), [node(1), node(2, { endpoint: '192.0.2.99:51820' }), node(4)])
  const folded = afterApply(before, plan(target, before, { prune: true }), target)
  const hs = Object.fromEntries(folded.wireguard!.peers.map(p => [p.publicKey.slice(0, 1), p.lastHandshake]))
  t.strictSame(hs, { B: 1000, D: 0 }, 'node-2 updated in place keeps its handshake, node-3 removed, node-4 new')
})

t.test('afterApply of an empty plan is the observed state itself (a quiet pass copies nothing)', async t => {
  const { afterApply } = await import('../../lib/mesh/expected')
  for (const backend of ['wireguard', 'vxlan'] as const) {
    const target = want(config({ type: backend }))
    const have = observedFrom(target)
    have.wireguard?.peers.forEach((p, i) => { p.lastHandshake = 2000 + i; p.rxBytes = i })
    const p = plan(target, have, { prune: true })
    t.ok(planIsEmpty(p), `${backend}: in sync`)
    const folded = afterApply(have, p, target)
    t.strictSame(folded, have, `${backend}: equal, handshakes and counters included`)
    t.equal(folded.routes, have.routes, `${backend}: the routes array itself`)
    if (backend === 'wireguard') t.equal(folded.wireguard?.peers, have.wireguard?.peers, 'the peers array itself')
  }
})

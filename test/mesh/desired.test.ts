import t from 'tap'
import type { Test } from 'tap'
import { desiredState, serviceRoutes, tunnelAddress } from '../../lib/mesh/desired'
import { config, key, node, nodes, self } from '../fixtures/mesh'

t.test('tunnel address is the network address of the pod subnet', async t => {
  t.strictSame(tunnelAddress('10.244.7.0/24'), { family: 4, ip: '10.244.7.0' })
  t.strictSame(tunnelAddress('fd00:10:244:7::/64'), { family: 6, ip: 'fd00:10:244:7::' })
})

const cases = [
  {
    name: 'wireguard: one peer per remote node, routes per family with own source address',
    config: config(),
    nodes: nodes.slice(0, 2),
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.state.wireguard, {
        ifname: 'pm-wg', publicKey: key('A'), listenPort: 51820, mtu: 1440,
        addresses: ['10.244.1.0/32', 'fd00:10:244:1::/128'],
        peers: [{ node: 'node-2', publicKey: key('B'), endpoint: '192.0.2.12:51820', allowedIps: ['10.244.2.0/24', 'fd00:10:244:2::/64'], persistentKeepalive: 25 }]
      })
      t.strictSame(d.state.routes, [
        { family: 4, dst: '10.244.2.0/24', dev: 'pm-wg', src: '10.244.1.0' },
        { family: 6, dst: 'fd00:10:244:2::/64', dev: 'pm-wg', src: 'fd00:10:244:1::' }
      ])
      t.equal(d.state.vxlan, undefined)
      t.strictSame(d.skipped, [])
    }
  },
  {
    name: 'the node itself is never its own peer',
    config: config(),
    nodes: [node(1)],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.state.wireguard?.peers, [])
      t.strictSame(d.state.routes, [])
    }
  },
  {
    name: 'vxlan: fdb/neighbour per remote, onlink routes via the remote tunnel address',
    config: config({ type: 'vxlan' }),
    nodes: nodes.slice(0, 2),
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.equal(d.state.wireguard, undefined)
      t.strictSame(d.state.vxlan, {
        ifname: 'pm-vx', vni: 1, port: 4789, mtu: 1450, mac: '02:00:00:00:00:01', localIp: '192.0.2.11',
        addresses: ['10.244.1.0/32', 'fd00:10:244:1::/128'],
        remotes: [{ node: 'node-2', mac: '02:00:00:00:00:02', underlayIp: '192.0.2.12', tunnelIps: ['10.244.2.0', 'fd00:10:244:2::'] }]
      })
      t.strictSame(d.state.routes, [
        { family: 4, dst: '10.244.2.0/24', dev: 'pm-vx', via: '10.244.2.0', src: '10.244.1.0' },
        { family: 6, dst: 'fd00:10:244:2::/64', dev: 'pm-vx', via: 'fd00:10:244:2::', src: 'fd00:10:244:1::' }
      ])
    }
  },
  {
    name: 'mixed mode: same location over vxlan, other locations over wireguard',
    config: config({ wg: { vxlanWithinLocation: true } }),
    nodes,
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(Object.fromEntries(d.transports), { 'node-2': 'vxlan', 'node-3': 'wireguard', 'node-4': 'wireguard' })
      t.strictSame(d.state.wireguard?.peers.map(p => p.node), ['node-3', 'node-4'])
      t.strictSame(d.state.vxlan?.remotes.map(r => r.node), ['node-2'])
      t.strictSame(d.state.routes.map(r => `${r.dst} ${r.dev}`), [
        '10.244.2.0/24 pm-vx', 'fd00:10:244:2::/64 pm-vx',
        '10.244.3.0/24 pm-wg', 'fd00:10:244:3::/64 pm-wg',
        '10.244.4.0/24 pm-wg', 'fd00:10:244:4::/64 pm-wg'])
    }
  },
  {
    name: 'mixed mode without a location of its own: everything over wireguard',
    config: config({ wg: { vxlanWithinLocation: true } }),
    nodes,
    self: self({ location: undefined }),
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.state.vxlan?.remotes, [])
      t.equal(d.state.wireguard?.peers.length, 3)
    }
  },
  {
    name: 'a record overlapping our own subnet is skipped, never routed',
    config: config(),
    nodes: [node(1), node(5, { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:5::/64'] })],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.state.routes, [])
      t.strictSame(d.skipped, [{ node: 'node-5', reason: "pod CIDR 10.244.1.0/24 overlaps this node's" }])
    }
  },
  {
    name: 'wireguard peer without a public key is skipped',
    config: config(),
    nodes: [node(2, { publicKey: undefined })],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.state.wireguard?.peers, [])
      t.strictSame(d.skipped, [{ node: 'node-2', reason: 'record has no WireGuard public key' }])
    }
  },
  {
    name: 'vxlan peer on another underlay family is skipped',
    config: config({ type: 'vxlan' }),
    nodes: [node(2, { endpoint: '[2001:db8::12]:51820' })],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.state.vxlan?.remotes, [])
      t.match(d.skipped[0]?.reason, /not IPv4/)
    }
  },
  {
    name: "a record whose endpoint is this node's own underlay is skipped, both backends",
    config: config({ wg: { vxlanWithinLocation: true } }),
    // node-2 shares our location (vxlan), node-3 does not (wireguard); both claim 192.0.2.11.
    nodes: [node(2, { endpoint: '192.0.2.11:51820' }), node(3, { endpoint: '192.0.2.11:4000' }), node(4)],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.skipped, [
        { node: 'node-2', reason: "endpoint 192.0.2.11:51820 is this node's own underlay address" },
        { node: 'node-3', reason: "endpoint 192.0.2.11:4000 is this node's own underlay address" }
      ])
      t.strictSame(d.state.wireguard?.peers.map(p => p.node), ['node-4'])
      t.strictSame(d.state.vxlan?.remotes, [])
      t.strictSame(d.state.routes.map(r => r.dst), ['10.244.4.0/24', 'fd00:10:244:4::/64'], 'no route to a skipped node')
    }
  },
  {
    name: 'mtu: IPv4 peers give the IPv4 MTU; a peer at an IPv6 endpoint lowers the device and is named',
    config: config(),
    nodes: [node(2), node(3, { endpoint: '[2001:db8::13]:51820' })],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.equal(d.state.wireguard?.mtu, 1420)
      t.strictSame(d.mtu, { wireguard: { transport: 'wireguard', mtu: 1420, fits: 1420, limitedBy: { node: 'node-3', family: 6 } }, pod: 1420 })
      t.equal(desiredState(config(), [node(2)], self()).mtu.pod, 1440, 'without it: 1440')
    }
  },
  {
    name: 'mtu: vxlan between IPv6 VTEPs',
    config: config({ type: 'vxlan' }),
    nodes: [node(2, { endpoint: '[2001:db8::12]:51820' })],
    self: self({ underlayIp: '2001:db8::11' }),
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.equal(d.state.vxlan?.mtu, 1430)
      t.equal(d.mtu.pod, 1430)
    }
  },
  {
    name: 'mtu: mixed mode gives each device its own MTU and pods the smaller',
    config: config({ wg: { vxlanWithinLocation: true } }),
    nodes,
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.equal(d.state.wireguard?.mtu, 1440)
      t.equal(d.state.vxlan?.mtu, 1450)
      t.equal(d.mtu.pod, 1440)
    }
  },
  {
    name: 'mtu: jumbo underlay',
    config: config(),
    nodes,
    self: self({ underlayMtu: 9000 }),
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.equal(d.state.wireguard?.mtu, 8940)
      t.equal(d.mtu.pod, 8940)
    }
  },
  {
    name: 'mtu: a narrow path toward one peer gives only its routes an MTU; the device keeps the full size',
    config: config(),
    nodes,
    self: self({ pathMtus: new Map([['node-3', 1400], ['node-2', 1500]]) }),
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.equal(d.state.wireguard?.mtu, 1440)
      t.equal(d.mtu.wireguard?.limitedBy, undefined)
      const mtuTo = new Map(d.state.routes.map(r => [r.dst, r.mtu]))
      t.equal(mtuTo.get('10.244.3.0/24'), 1328, 'node-3 behind 1400: 1340 rounded down to WireGuard\'s 16')
      t.equal(mtuTo.get('fd00:10:244:3::/64'), 1328)
      t.equal(mtuTo.get('10.244.2.0/24'), undefined, 'node-2\'s full path: the device\'s MTU')
      t.strictSame(d.mtu.narrow, [{ node: 'node-3', pathMtu: 1400, routeMtu: 1328 }], 'the narrowed peer, for the status value')
    }
  },
  {
    name: "mtu: the config's mtu wins even where it does not fit",
    config: { ...config(), mtu: 1440 },
    nodes: [node(2), node(3, { endpoint: '[2001:db8::13]:51820' })],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.equal(d.state.wireguard?.mtu, 1440)
      t.match(d.mtu.wireguard, { mtu: 1440, fits: 1420, override: 1440 })
    }
  },
  {
    name: 'peers are ordered by name whatever the input order',
    config: config(),
    nodes: [node(4), node(2), node(3)],
    check: (t: Test, d: ReturnType<typeof desiredState>) => {
      t.strictSame(d.state.wireguard?.peers.map(p => p.node), ['node-2', 'node-3', 'node-4'])
    }
  }
]

for (const c of cases) {
  t.test(c.name, async t => c.check(t, desiredState(c.config, c.nodes, c.self ?? self())))
}

t.test('service ranges: a route per range on the primary device, from the pod gateway of that family', async t => {
  const services = { ipv4: '10.96.0.0/16', ipv6: 'fd00:96::/112', nodePortRange: { min: 30000, max: 32767 } }
  const wg = serviceRoutes({ ...config(), services }, self())
  t.strictSame(wg, [
    { family: 4, dst: '10.96.0.0/16', dev: 'pm-wg', src: '10.244.1.1' },
    { family: 6, dst: 'fd00:96::/112', dev: 'pm-wg', src: 'fd00:10:244:1::1' }
  ], 'wireguard: on the WireGuard device')
  t.strictSame(serviceRoutes({ ...config({ type: 'vxlan' }), services }, self()).map(r => r.dev), ['pm-vx', 'pm-vx'], 'vxlan only: on the VXLAN device')
  t.strictSame(serviceRoutes({ ...config(), services }, self({ podCIDRs: ['10.244.1.0/24'] })).map(r => r.dst), ['10.96.0.0/16'], 'no IPv6 pod subnet: no IPv6 service route (no source for it)')
  t.strictSame(serviceRoutes(config(), self()), [], 'no service ranges: no route')
  const d = desiredState({ ...config(), services }, nodes.slice(0, 2), self())
  t.strictSame(d.state.routes.filter(r => r.dst === '10.96.0.0/16'), [{ family: 4, dst: '10.96.0.0/16', dev: 'pm-wg', src: '10.244.1.1' }], 'part of the desired state')
  t.strictSame(serviceRoutes({ ...config(), services }, self({ podCIDRs: [] })), [], 'no pod subnet yet: nothing')
})

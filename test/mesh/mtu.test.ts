// The MTU table (issue #12, acceptance 5): overhead by backend and outer family, the tunnel MTU for
// every backend × outer family × underlay MTU, and one device's MTU from its current peers.
import t from 'tap'
import {
  TUNNEL_OVERHEAD, deviceMtu, describeDeviceMtu, overrideTooLarge, podMtu, recordMtu, tunnelMtu, underlayMtuOf,
  type DeviceMtuInput
} from '../../lib/mesh/mtu'

t.test('overhead by backend and outer family', async t => {
  t.strictSame(TUNNEL_OVERHEAD, { wireguard: { 4: 60, 6: 80 }, vxlan: { 4: 50, 6: 70 } })
})

t.test('tunnel MTU: backend × outer family × underlay MTU', async t => {
  const table = [
    ['wireguard', 4, 1500, 1440],
    ['wireguard', 6, 1500, 1420],
    ['vxlan', 4, 1500, 1450],
    ['vxlan', 6, 1500, 1430],
    ['wireguard', 4, 9000, 8940],
    ['wireguard', 6, 9000, 8920],
    ['vxlan', 4, 9000, 8950],
    ['vxlan', 6, 9000, 8930],
    ['wireguard', 4, 1400, 1340],
    ['wireguard', 6, 1400, 1320],
    ['vxlan', 4, 1400, 1350],
    ['vxlan', 6, 1400, 1330]
  ] as const
  for (const [backend, family, underlay, want] of table) {
    t.equal(tunnelMtu(backend, family, underlay), want, `${backend} over IPv${family}, underlay ${underlay}`)
  }
})

const base: DeviceMtuInput = { transport: 'wireguard', underlayFamily: 4, underlayMtu: 1500, peers: [] }
const cases: Array<{ name: string, input: Partial<DeviceMtuInput>, want: ReturnType<typeof deviceMtu>, tooLarge?: boolean }> = [
  { name: 'no peers: the node\'s own IPv4 underlay', input: {}, want: { transport: 'wireguard', mtu: 1440, fits: 1440 } },
  { name: 'no peers: the node\'s own IPv6 underlay', input: { underlayFamily: 6 }, want: { transport: 'wireguard', mtu: 1420, fits: 1420 } },
  {
    name: 'IPv4 peers only',
    input: { peers: [{ node: 'b', family: 4 }, { node: 'c', family: 4 }] },
    want: { transport: 'wireguard', mtu: 1440, fits: 1440 }
  },
  {
    name: 'an IPv6 node whose peers are all IPv4: the device carries IPv4 outer headers only',
    input: { underlayFamily: 6, peers: [{ node: 'b', family: 4 }] },
    want: { transport: 'wireguard', mtu: 1440, fits: 1440 }
  },
  {
    name: 'one IPv6 peer lowers an IPv4 node\'s device and is named',
    input: { peers: [{ node: 'b', family: 4 }, { node: 'd', family: 6 }, { node: 'c', family: 6 }] },
    want: { transport: 'wireguard', mtu: 1420, fits: 1420, limitedBy: { node: 'c', family: 6 } }
  },
  {
    name: 'vxlan over IPv6 (VTEPs on IPv6)',
    input: { transport: 'vxlan', underlayFamily: 6, peers: [{ node: 'b', family: 6 }] },
    want: { transport: 'vxlan', mtu: 1430, fits: 1430 }
  },
  {
    name: 'jumbo underlay, mixed peer families',
    input: { underlayMtu: 9000, peers: [{ node: 'b', family: 4 }, { node: 'c', family: 6 }] },
    want: { transport: 'wireguard', mtu: 8920, fits: 8920, limitedBy: { node: 'c', family: 6 } }
  },
  {
    name: 'the config\'s mtu wins when it fits',
    input: { override: 1400, peers: [{ node: 'b', family: 6 }] },
    want: { transport: 'wireguard', mtu: 1400, fits: 1420, limitedBy: { node: 'b', family: 6 }, override: 1400 },
    tooLarge: false
  },
  {
    name: 'the config\'s mtu still wins when a peer\'s path cannot carry it, and says so',
    input: { override: 1440, peers: [{ node: 'b', family: 4 }, { node: 'c', family: 6 }] },
    want: { transport: 'wireguard', mtu: 1440, fits: 1420, limitedBy: { node: 'c', family: 6 }, override: 1440 },
    tooLarge: true
  }
]
for (const c of cases) {
  t.test(c.name, async t => {
    const d = deviceMtu({ ...base, ...c.input })
    t.strictSame(d, c.want)
    t.equal(overrideTooLarge(d), c.tooLarge ?? false)
  })
}

t.test('pods get the smallest device MTU (mixed mode)', async t => {
  t.equal(podMtu([{ mtu: 1440 }, { mtu: 1450 }]), 1440)
  t.equal(podMtu([{ mtu: 1450 }, { mtu: 1420 }]), 1420)
  t.throws(() => podMtu([]))
})

t.test('the record\'s MTU and the underlay MTU behind it', async t => {
  t.equal(recordMtu('wireguard', 4, 1500), 1440)
  t.equal(recordMtu('vxlan', 6, 9000), 8930)
  t.equal(recordMtu('wireguard', 6, 1500, 1380), 1380, 'the override')
  for (const [tr, f, u] of [['wireguard', 4, 1500], ['wireguard', 6, 9000], ['vxlan', 6, 1500], ['vxlan', 4, 1400]] as const) {
    t.equal(underlayMtuOf(tr, f, recordMtu(tr, f, u)), u, `${tr} IPv${f} ${u}`)
  }
})

t.test('one line says what limits the device', async t => {
  t.equal(describeDeviceMtu('pm0', deviceMtu({ ...base, peers: [{ node: 'c', family: 6 }] })), "pm0 mtu 1420 (c's IPv6 endpoint needs it)")
  t.equal(describeDeviceMtu('pm0', deviceMtu(base)), 'pm0 mtu 1440')
  t.equal(describeDeviceMtu('pm0', deviceMtu({ ...base, override: 1400 })), 'pm0 mtu 1400 (config)')
  t.equal(describeDeviceMtu('pm0', deviceMtu({ ...base, override: 1500, peers: [{ node: 'c', family: 6 }] })),
    "pm0 mtu 1500 (config) does not fit the current peers' paths: at most 1420 (c's IPv6 endpoint needs it)")
})

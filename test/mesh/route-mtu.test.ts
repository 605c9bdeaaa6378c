// The MTU of pod routes toward a peer behind a path narrower than the links, as a table.
import t from 'tap'
import { narrowRouteMtu } from '../../lib/mesh/mtu'

t.test('route MTU toward a narrow path', async t => {
  const rows: Array<[string, Parameters<typeof narrowRouteMtu>[0], number | undefined]> = [
    ['the full path: the device serves', { transport: 'wireguard', outer: 4, pathMtu: 1500, deviceMtu: 1440, inner: 4 }, undefined],
    ['the full path over IPv6 (1420, not a multiple of 16): still the device', { transport: 'wireguard', outer: 6, pathMtu: 1500, deviceMtu: 1420, inner: 4 }, undefined],
    ['a full jumbo path (8940): still the device', { transport: 'wireguard', outer: 4, pathMtu: 9000, deviceMtu: 8940, inner: 4 }, undefined],
    ['WireGuard over IPv4 through 1400: 1340 rounded down to 16', { transport: 'wireguard', outer: 4, pathMtu: 1400, deviceMtu: 1440, inner: 4 }, 1328],
    ['WireGuard over IPv6 through 1400: 1320 rounded down to 16', { transport: 'wireguard', outer: 6, pathMtu: 1400, deviceMtu: 1420, inner: 4 }, 1312],
    ['VXLAN over IPv4 through 1400', { transport: 'vxlan', outer: 4, pathMtu: 1400, deviceMtu: 1450, inner: 4 }, 1350],
    ['VXLAN over IPv6 through 1400', { transport: 'vxlan', outer: 6, pathMtu: 1400, deviceMtu: 1430, inner: 6 }, 1330],
    ['jumbo links, a 1500 WAN', { transport: 'wireguard', outer: 4, pathMtu: 1500, deviceMtu: 8940, inner: 4 }, 1440],
    ['an IPv6 pod route never below 1280', { transport: 'wireguard', outer: 6, pathMtu: 1300, deviceMtu: 1420, inner: 6 }, 1280],
    ['an IPv4 pod route may go lower', { transport: 'wireguard', outer: 6, pathMtu: 1300, deviceMtu: 1420, inner: 4 }, 1216],
    ['a config mtu already below the path: nothing to add', { transport: 'wireguard', outer: 4, pathMtu: 1400, deviceMtu: 1300, inner: 4 }, undefined]
  ]
  for (const [name, input, want] of rows) t.equal(narrowRouteMtu(input), want, name)
})

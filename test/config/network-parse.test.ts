import t from 'tap'
import { type ConfigProblem, isConfigError } from '../../lib/config/config-error'
import { buildNetworkConfig, networkConfigWarnings, parseNetworkConfig, parseNetworkConfigJson } from '../../lib/config/network-parse'

const base = (): Record<string, unknown> => ({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })

t.test('defaults are applied and CIDRs canonicalised', async t => {
  t.strictSame(parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244:0::/56' } }), {
    v: 1,
    backend: {
      type: 'wireguard',
      wireguard: { port: 51820, persistentKeepalive: 25, vxlanWithinLocation: false },
      vxlan: { vni: 1, port: 4789 }
    },
    ipv4: { cidr: '10.244.0.0/16', subnetLen: 24 },
    ipv6: { cidr: 'fd00:10:244::/56', subnetLen: 64 }
  })
})

t.test('a full config round-trips unchanged', async t => {
  const full = {
    v: 1,
    ipv4: { cidr: '10.250.0.0/21', subnetLen: 24, subnetMin: '10.250.2.0/24', subnetMax: '10.250.5.0/24' },
    backend: { type: 'vxlan', wireguard: { port: 51000, persistentKeepalive: 0, vxlanWithinLocation: true }, vxlan: { vni: 42, port: 8472 } },
    mtu: 1400
  }
  const parsed = parseNetworkConfig(full)
  t.strictSame(parseNetworkConfig(JSON.parse(JSON.stringify(parsed))), parsed)
  t.equal(parsed.backend.vxlan.vni, 42)
  t.equal(parsed.ipv4?.subnetMin, '10.250.2.0/24')
})

interface Bad { name: string, value: unknown, problem: ConfigProblem, field: string, says: RegExp }
const bad: Bad[] = [
  { name: 'not an object', value: 'nope', problem: 'type', field: 'config', says: /must be an object/ },
  { name: 'wrong version', value: { ...base(), v: 2 }, problem: 'version', field: 'v', says: /unsupported config version 2/ },
  { name: 'missing version', value: { ipv4: { cidr: '10.0.0.0/16' } }, problem: 'version', field: 'v', says: /config version is missing/ },
  { name: 'unknown top-level field', value: { ...base(), podCidr: 'x' }, problem: 'unknownField', field: 'podCidr', says: /unknown field/ },
  { name: 'no family', value: { v: 1 }, problem: 'noFamily', field: 'ipv4', says: /neither ipv4 nor ipv6/ },
  { name: 'malformed CIDR', value: { v: 1, ipv4: { cidr: '10.244.0/16' } }, problem: 'cidr', field: 'ipv4.cidr', says: /not a valid CIDR/ },
  { name: 'CIDR without length', value: { v: 1, ipv4: { cidr: '10.244.0.0' } }, problem: 'cidr', field: 'ipv4.cidr', says: /missing \/prefix-length/ },
  { name: 'host bits set', value: { v: 1, ipv4: { cidr: '10.244.1.0/16' } }, problem: 'hostBits', field: 'ipv4.cidr', says: /host bits set \(the network is 10\.244\.0\.0\/16\)/ },
  { name: 'IPv6 range under ipv4', value: { v: 1, ipv4: { cidr: 'fd00::/48' } }, problem: 'family', field: 'ipv4.cidr', says: /IPv6 CIDR; it belongs under ipv6/ },
  { name: 'IPv4 range under ipv6', value: { v: 1, ipv6: { cidr: '10.0.0.0/8' } }, problem: 'family', field: 'ipv6.cidr', says: /IPv4 CIDR; it belongs under ipv4/ },
  { name: 'IPv4-mapped range under ipv6', value: { v: 1, ipv6: { cidr: '::ffff:10.0.0.0/104' } }, problem: 'family', field: 'ipv6.cidr', says: /IPv4-mapped/ },
  { name: 'subnetLen shorter than range', value: { v: 1, ipv4: { cidr: '10.244.0.0/16', subnetLen: 8 } }, problem: 'subnetLen', field: 'ipv4.subnetLen', says: /\/8 does not fit 10\.244\.0\.0\/16/ },
  { name: 'subnetLen too long', value: { v: 1, ipv4: { cidr: '10.244.0.0/16', subnetLen: 31 } }, problem: 'subnetLen', field: 'ipv4.subnetLen', says: /between \/17 and \/30/ },
  { name: 'one subnet only', value: { v: 1, ipv4: { cidr: '10.244.0.0/24', subnetLen: 24 } }, problem: 'tooFewSubnets', field: 'ipv4.subnetLen', says: /only 1 subnet; need at least 2/ },
  { name: 'subnetLen not integer', value: { v: 1, ipv6: { cidr: 'fd00::/56', subnetLen: 64.5 } }, problem: 'type', field: 'ipv6.subnetLen', says: /must be an integer/ },
  { name: 'subnetMin outside range', value: { v: 1, ipv4: { cidr: '10.244.0.0/16', subnetMin: '10.245.0.0/24' } }, problem: 'bounds', field: 'ipv4.subnetMin', says: /outside 10\.244\.0\.0\/16/ },
  { name: 'subnetMax wrong length', value: { v: 1, ipv4: { cidr: '10.244.0.0/16', subnetMax: '10.244.0.0/25' } }, problem: 'bounds', field: 'ipv4.subnetMax', says: /must be a \/24 subnet/ },
  { name: 'bounds reversed', value: { v: 1, ipv4: { cidr: '10.244.0.0/16', subnetMin: '10.244.9.0/24', subnetMax: '10.244.3.0/24' } }, problem: 'bounds', field: 'ipv4.subnetMin', says: /is above subnetMax/ },
  { name: 'bounds hold one subnet', value: { v: 1, ipv4: { cidr: '10.244.0.0/16', subnetMin: '10.244.3.0/24', subnetMax: '10.244.3.0/24' } }, problem: 'tooFewSubnets', field: 'ipv4.subnetMax', says: /only 1 subnet/ },
  { name: 'unknown backend', value: { ...base(), backend: { type: 'ipip' } }, problem: 'backend', field: 'backend.type', says: /unknown backend "ipip" \(known: wireguard, vxlan\)/ },
  { name: 'WireGuard port 0', value: { ...base(), backend: { wireguard: { port: 0 } } }, problem: 'range', field: 'backend.wireguard.port', says: /0 is outside 1\.\.65535/ },
  { name: 'port as string', value: { ...base(), backend: { wireguard: { port: '51820' } } }, problem: 'type', field: 'backend.wireguard.port', says: /must be an integer, got "51820"/ },
  { name: 'VNI too large', value: { ...base(), backend: { type: 'vxlan', vxlan: { vni: 16777216 } } }, problem: 'range', field: 'backend.vxlan.vni', says: /outside 1\.\.16777215/ },
  { name: 'VXLAN port too large', value: { ...base(), backend: { vxlan: { port: 70000 } } }, problem: 'range', field: 'backend.vxlan.port', says: /70000 is outside/ },
  { name: 'MTU too small', value: { ...base(), mtu: 500 }, problem: 'range', field: 'mtu', says: /500 is outside 576\.\.9000/ },
  { name: 'MTU below IPv6 minimum', value: { v: 1, ipv6: { cidr: 'fd00::/56' }, mtu: 1200 }, problem: 'range', field: 'mtu', says: /outside 1280\.\.9000/ },
  { name: 'unknown wireguard option', value: { ...base(), backend: { wireguard: { listenPort: 1 } } }, problem: 'unknownField', field: 'backend.wireguard.listenPort', says: /unknown field/ },
  { name: 'keepalive negative', value: { ...base(), backend: { wireguard: { persistentKeepalive: -1 } } }, problem: 'range', field: 'backend.wireguard.persistentKeepalive', says: /-1 is outside 0\.\.65535/ },
  { name: 'missing cidr', value: { v: 1, ipv4: { subnetLen: 24 } }, problem: 'missing', field: 'ipv4.cidr', says: /is required/ },
  // Ranges that can never be a pod network (issue #10).
  { name: 'IPv4 default route', value: { v: 1, ipv4: { cidr: '0.0.0.0/0' } }, problem: 'defaultRoute', field: 'ipv4.cidr', says: /0\.0\.0\.0\/0 is a default route/ },
  { name: 'IPv6 default route', value: { v: 1, ipv6: { cidr: '::/0' } }, problem: 'defaultRoute', field: 'ipv6.cidr', says: /::\/0 is a default route/ },
  { name: 'default route even when wide ranges are allowed', value: { v: 1, ipv4: { cidr: '0.0.0.0/0' }, allowWideRange: true }, problem: 'defaultRoute', field: 'ipv4.cidr', says: /default route/ },
  { name: 'IPv4 wider than /8', value: { v: 1, ipv4: { cidr: '10.0.0.0/7', subnetLen: 24 } }, problem: 'tooWide', field: 'ipv4.cidr', says: /10\.0\.0\.0\/7 is wider than \/8; too wide to be a pod network/ },
  { name: 'IPv6 wider than /32', value: { v: 1, ipv6: { cidr: 'fd00::/8' } }, problem: 'tooWide', field: 'ipv6.cidr', says: /fd00::\/8 is wider than \/32/ },
  { name: 'IPv4 /2 overlapping multicast', value: { v: 1, ipv4: { cidr: '192.0.0.0/2' } }, problem: 'reserved', field: 'ipv4.cidr', says: /overlaps 224\.0\.0\.0\/4, which is multicast/ },
  { name: 'IPv4 "this network"', value: { v: 1, ipv4: { cidr: '0.0.0.0/8' } }, problem: 'reserved', field: 'ipv4.cidr', says: /overlaps 0\.0\.0\.0\/8, which is unspecified \("this network"/ },
  { name: 'IPv4 loopback', value: { v: 1, ipv4: { cidr: '127.0.0.0/8' } }, problem: 'reserved', field: 'ipv4.cidr', says: /127\.0\.0\.0\/8 overlaps 127\.0\.0\.0\/8, which is loopback/ },
  { name: 'IPv4 inside loopback', value: { v: 1, ipv4: { cidr: '127.10.0.0/16' } }, problem: 'reserved', field: 'ipv4.cidr', says: /which is loopback/ },
  { name: 'IPv6 loopback', value: { v: 1, ipv6: { cidr: '::/120', subnetLen: 124 } }, problem: 'reserved', field: 'ipv6.cidr', says: /overlaps ::\/128, which is the unspecified address/ },
  { name: 'IPv4 link-local', value: { v: 1, ipv4: { cidr: '169.254.0.0/16' } }, problem: 'reserved', field: 'ipv4.cidr', says: /169\.254\.0\.0\/16 overlaps 169\.254\.0\.0\/16, which is link-local/ },
  { name: 'IPv4 containing link-local', value: { v: 1, ipv4: { cidr: '169.0.0.0/8' } }, problem: 'reserved', field: 'ipv4.cidr', says: /which is link-local/ },
  { name: 'IPv6 link-local', value: { v: 1, ipv6: { cidr: 'fe80::/10', subnetLen: 64 } }, problem: 'reserved', field: 'ipv6.cidr', says: /fe80::\/10 overlaps fe80::\/10, which is link-local/ },
  { name: 'IPv6 inside link-local', value: { v: 1, ipv6: { cidr: 'fe80::/56' } }, problem: 'reserved', field: 'ipv6.cidr', says: /which is link-local/ },
  { name: 'IPv4 multicast', value: { v: 1, ipv4: { cidr: '224.0.0.0/4', subnetLen: 24 }, allowWideRange: true }, problem: 'reserved', field: 'ipv4.cidr', says: /which is multicast/ },
  { name: 'IPv4 inside multicast', value: { v: 1, ipv4: { cidr: '239.1.0.0/16' } }, problem: 'reserved', field: 'ipv4.cidr', says: /overlaps 224\.0\.0\.0\/4, which is multicast/ },
  { name: 'IPv6 multicast', value: { v: 1, ipv6: { cidr: 'ff02::/56' } }, problem: 'reserved', field: 'ipv6.cidr', says: /overlaps ff00::\/8, which is multicast/ },
  { name: 'IPv4 broadcast', value: { v: 1, ipv4: { cidr: '255.255.255.0/24', subnetLen: 28 } }, problem: 'reserved', field: 'ipv4.cidr', says: /which is the IPv4 limited broadcast address/ },
  { name: 'allowWideRange not true', value: { ...base(), allowWideRange: 'yes' }, problem: 'type', field: 'allowWideRange', says: /must be true or absent/ }
]

t.test('bad configs are rejected with the field and the problem', async t => {
  t.ok(bad.length >= 15)
  for (const c of bad) {
    t.test(c.name, async t => {
      let err: unknown
      try { parseNetworkConfig(c.value) } catch (e) { err = e }
      t.ok(isConfigError(err), 'a ConfigError')
      if (!isConfigError(err)) return
      t.equal(err.problem, c.problem)
      t.equal(err.field, c.field)
      t.match(err.message, c.says)
      t.ok(err.message.startsWith(`${c.field}: `), 'message names the field')
    })
  }
})

t.test('stored JSON that is not JSON', async t => {
  t.throws(() => parseNetworkConfigJson('{"v":1,'), { problem: 'json', field: 'config' })
})

t.test('buildNetworkConfig from init flags', async t => {
  const c = buildNetworkConfig({
    'ipv4-cidr': '10.244.0.0/16',
    'ipv6-cidr': 'fd00:10:244::/56',
    'subnet-len4': '24',
    'subnet-len6': '64',
    backend: 'vxlan',
    'wg-port': '51821',
    keepalive: '0',
    'vxlan-vni': '7',
    'vxlan-port': '4790',
    mtu: '1400',
    'vxlan-within-location': true
  })
  t.strictSame(c, {
    v: 1,
    backend: {
      type: 'vxlan',
      wireguard: { port: 51821, persistentKeepalive: 0, vxlanWithinLocation: true },
      vxlan: { vni: 7, port: 4790 }
    },
    ipv4: { cidr: '10.244.0.0/16', subnetLen: 24 },
    ipv6: { cidr: 'fd00:10:244::/56', subnetLen: 64 },
    mtu: 1400
  })
  t.throws(() => buildNetworkConfig({ 'ipv4-cidr': '10.244.0.0/16', 'wg-port': 'abc' }), { field: '--wg-port', problem: 'flag', message: /--wg-port: "abc" is not a non-negative integer/ })
  t.throws(() => buildNetworkConfig({ 'ipv4-cidr': '10.244.0.0/16', 'subnet-len4': '8' }), { field: '--subnet-len4', problem: 'subnetLen', message: /--subnet-len4: ipv4\.subnetLen: \/8 does not fit/ })
  t.throws(() => buildNetworkConfig({ 'ipv4-cidr': '10.244.0.0/16', backend: 'gre' }), { field: '--backend', problem: 'backend' })
  t.throws(() => buildNetworkConfig({}), { problem: 'noFamily', message: /--ipv4-cidr and\/or --ipv6-cidr/ })
  t.throws(() => buildNetworkConfig({ 'subnet-len6': '64', 'ipv4-cidr': '10.0.0.0/16' }), { field: '--subnet-len6', message: /needs --ipv6-cidr/ })
})

t.test('a range wider than /8 or /32 passes only when forced, with a warning', async t => {
  t.throws(() => buildNetworkConfig({ 'ipv4-cidr': '10.0.0.0/7' }), { field: '--ipv4-cidr', problem: 'tooWide', message: /--ipv4-cidr: ipv4\.cidr: 10\.0\.0\.0\/7 is wider than \/8.*init --force/ })
  const forced = buildNetworkConfig({ 'ipv4-cidr': '10.0.0.0/7', 'ipv6-cidr': 'fd00::/16' }, { force: true })
  t.equal(forced.allowWideRange, true, 'recorded, so every daemon accepts it too')
  t.strictSame(parseNetworkConfig(JSON.parse(JSON.stringify(forced))), forced, 'round-trips')
  t.strictSame(networkConfigWarnings(forced), [
    'ipv4.cidr 10.0.0.0/7 is wider than /8; accepted because it was forced (allowWideRange)',
    'ipv6.cidr fd00::/16 is wider than /32; accepted because it was forced (allowWideRange)'
  ])
  // --force on a normal range (overwrite only) does not mark the config.
  t.equal(buildNetworkConfig({ 'ipv4-cidr': '10.244.0.0/16' }, { force: true }).allowWideRange, undefined)
  t.strictSame(networkConfigWarnings(parseNetworkConfig(base())), [])
  // Exactly /8 and /32 are fine without force.
  t.equal(parseNetworkConfig({ v: 1, ipv4: { cidr: '10.0.0.0/8' }, ipv6: { cidr: '2001:db8::/32' } }).ipv4?.cidr, '10.0.0.0/8')
  for (const cidr of ['0.0.0.0/0', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4']) {
    t.throws(() => buildNetworkConfig({ 'ipv4-cidr': cidr }, { force: true }), { field: '--ipv4-cidr' }, `${cidr} even with --force`)
  }
})

// The services section (issue #11): cluster-IP ranges per family and the NodePort range.
const dual = (services: unknown): Record<string, unknown> => ({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' }, services })

t.test('a services section: canonical ranges, default NodePort range, round-trip', async t => {
  const c = parseNetworkConfig(dual({ ipv4: '10.96.0.0/12', ipv6: 'fd00:10:96:0::/108' }))
  t.strictSame(c.services, { nodePortRange: { min: 30000, max: 32767 }, ipv4: '10.96.0.0/12', ipv6: 'fd00:10:96::/108' })
  t.strictSame(parseNetworkConfig(JSON.parse(JSON.stringify(c))), c, 'round-trips')
  t.strictSame(parseNetworkConfig(dual({ ipv6: 'fd00:10:96::/124', nodePortRange: { min: 80, max: 80 } })).services,
    { nodePortRange: { min: 80, max: 80 }, ipv6: 'fd00:10:96::/124' }, 'one family, a one-port range, the narrowest IPv6 range')
  t.equal(parseNetworkConfig(dual({ ipv4: '10.96.0.0/28' })).services?.ipv4, '10.96.0.0/28', 'the narrowest IPv4 range')
  t.equal(parseNetworkConfig(base()).services, undefined, 'a config without the section (clusters made before Services) stays valid')
})

const badServices: Bad[] = [
  { name: 'services not an object', value: dual('10.96.0.0/12'), problem: 'type', field: 'services', says: /must be an object/ },
  { name: 'no service range', value: dual({ nodePortRange: { min: 30000, max: 30100 } }), problem: 'noFamily', field: 'services.ipv4', says: /needs at least one service range/ },
  { name: 'unknown services field', value: dual({ ipv4: '10.96.0.0/12', cidr: 'x' }), problem: 'unknownField', field: 'services.cidr', says: /unknown field/ },
  { name: 'service range not a CIDR', value: dual({ ipv4: '10.96.0/12' }), problem: 'cidr', field: 'services.ipv4', says: /not a valid CIDR/ },
  { name: 'service range with host bits', value: dual({ ipv4: '10.96.0.1/12' }), problem: 'hostBits', field: 'services.ipv4', says: /host bits set \(the network is 10\.96\.0\.0\/12\)/ },
  { name: 'IPv6 service range under ipv4', value: dual({ ipv4: 'fd00:10:96::/108' }), problem: 'family', field: 'services.ipv4', says: /IPv6 CIDR/ },
  { name: 'IPv4 service range wider than /12', value: dual({ ipv4: '10.96.0.0/11' }), problem: 'serviceRangeLen', field: 'services.ipv4', says: /10\.96\.0\.0\/11: a service range must be between \/12 and \/28/ },
  { name: 'IPv4 service range narrower than /28', value: dual({ ipv4: '10.96.0.0/29' }), problem: 'serviceRangeLen', field: 'services.ipv4', says: /between \/12 and \/28/ },
  { name: 'IPv6 service range wider than /108', value: dual({ ipv6: 'fd00:10:96::/64' }), problem: 'serviceRangeLen', field: 'services.ipv6', says: /fd00:10:96::\/64: a service range must be between \/108 and \/124/ },
  { name: 'IPv6 service range narrower than /124', value: dual({ ipv6: 'fd00:10:96::/126' }), problem: 'serviceRangeLen', field: 'services.ipv6', says: /between \/108 and \/124/ },
  { name: 'service range inside the pod range', value: dual({ ipv4: '10.244.16.0/20' }), problem: 'overlap', field: 'services.ipv4', says: /10\.244\.16\.0\/20 overlaps the pod range 10\.244\.0\.0\/16/ },
  { name: 'service range containing the pod range', value: { v: 1, ipv4: { cidr: '10.96.0.0/16' }, services: { ipv4: '10.96.0.0/12' } }, problem: 'overlap', field: 'services.ipv4', says: /overlaps the pod range 10\.96\.0\.0\/16/ },
  { name: 'IPv6 service range inside the pod range', value: dual({ ipv6: 'fd00:10:244::/112' }), problem: 'overlap', field: 'services.ipv6', says: /overlaps the pod range fd00:10:244::\/56/ },
  { name: 'service range of a family without pods', value: { ...base(), services: { ipv6: 'fd00:10:96::/108' } }, problem: 'noFamily', field: 'services.ipv6', says: /no ipv6 pod range/ },
  { name: 'service range in loopback', value: dual({ ipv4: '127.0.0.0/16' }), problem: 'reserved', field: 'services.ipv4', says: /which is loopback; services cannot use it/ },
  { name: 'service range in link-local', value: dual({ ipv6: 'fe80::/112' }), problem: 'reserved', field: 'services.ipv6', says: /which is link-local/ },
  { name: 'node port range reversed', value: dual({ ipv4: '10.96.0.0/12', nodePortRange: { min: 32767, max: 30000 } }), problem: 'range', field: 'services.nodePortRange', says: /min 32767 is above max 30000/ },
  { name: 'node port 0', value: dual({ ipv4: '10.96.0.0/12', nodePortRange: { min: 0, max: 100 } }), problem: 'range', field: 'services.nodePortRange.min', says: /0 is outside 1\.\.65535/ },
  { name: 'node port above 65535', value: dual({ ipv4: '10.96.0.0/12', nodePortRange: { min: 30000, max: 65536 } }), problem: 'range', field: 'services.nodePortRange.max', says: /65536 is outside 1\.\.65535/ },
  { name: 'node port not an integer', value: dual({ ipv4: '10.96.0.0/12', nodePortRange: { min: '30000', max: 32767 } }), problem: 'type', field: 'services.nodePortRange.min', says: /must be an integer/ },
  { name: 'unknown node port range field', value: dual({ ipv4: '10.96.0.0/12', nodePortRange: { from: 1 } }), problem: 'unknownField', field: 'services.nodePortRange.from', says: /unknown field/ },
  { name: 'node port range holding the WireGuard port', value: dual({ ipv4: '10.96.0.0/12', nodePortRange: { min: 50000, max: 60000 } }), problem: 'range', field: 'services.nodePortRange', says: /50000-60000 contains backend\.wireguard\.port 51820/ },
  { name: 'node port range holding the VXLAN port', value: { ...dual({ ipv4: '10.96.0.0/12', nodePortRange: { min: 4000, max: 5000 } }), backend: { type: 'vxlan' } }, problem: 'range', field: 'services.nodePortRange', says: /contains backend\.vxlan\.port 4789/ }
]

t.test('bad services sections are rejected with the field and the problem', async t => {
  for (const c of badServices) {
    let err: unknown
    try { parseNetworkConfig(c.value) } catch (e) { err = e }
    t.ok(isConfigError(err), `${c.name}: a ConfigError`)
    if (!isConfigError(err)) continue
    t.equal(err.problem, c.problem, c.name)
    t.equal(err.field, c.field, c.name)
    t.match(err.message, c.says, c.name)
  }
  // A tunnel port the backend does not use may sit inside the range.
  t.doesNotThrow(() => parseNetworkConfig({ ...dual({ ipv4: '10.96.0.0/12', nodePortRange: { min: 4000, max: 5000 } }) }), 'WireGuard backend: the VXLAN port is unused')
})

t.test('--service-cidr and --node-port-range', async t => {
  const flags = { 'ipv4-cidr': '10.244.0.0/16', 'ipv6-cidr': 'fd00:10:244::/56' }
  t.strictSame(buildNetworkConfig({ ...flags, 'service-cidr': ['fd00:10:96::/108', '10.96.0.0/12'], 'node-port-range': '31000-31999' }).services,
    { nodePortRange: { min: 31000, max: 31999 }, ipv4: '10.96.0.0/12', ipv6: 'fd00:10:96::/108' })
  t.strictSame(buildNetworkConfig({ ...flags, 'service-cidr': ['10.96.0.0/12'] }).services, { nodePortRange: { min: 30000, max: 32767 }, ipv4: '10.96.0.0/12' })
  t.equal(buildNetworkConfig(flags).services, undefined, 'no --service-cidr: no section')
  const refused: Array<[Parameters<typeof buildNetworkConfig>[0], string, RegExp]> = [
    [{ ...flags, 'node-port-range': '30000-30100' }, '--node-port-range', /needs --service-cidr/],
    [{ ...flags, 'service-cidr': ['10.96.0.0/12', '10.112.0.0/12'] }, '--service-cidr', /two IPv4 service ranges \(10\.96\.0\.0\/12, 10\.112\.0\.0\/12\); give one per family/],
    [{ ...flags, 'service-cidr': ['10.96.0.0'] }, '--service-cidr', /"10\.96\.0\.0" is not a valid CIDR/],
    [{ ...flags, 'service-cidr': ['10.244.128.0/20'] }, '--service-cidr', /--service-cidr: services\.ipv4: 10\.244\.128\.0\/20 overlaps the pod range/],
    [{ ...flags, 'service-cidr': ['10.96.0.0/12'], 'node-port-range': '30000' }, '--node-port-range', /"30000" is not MIN-MAX/],
    [{ ...flags, 'service-cidr': ['10.96.0.0/12'], 'node-port-range': '32000-31000' }, '--node-port-range', /min 32000 is above max 31000/],
    [{ ...flags, 'service-cidr': ['10.96.0.0/12'], 'node-port-range': '30000-70000' }, '--node-port-range', /70000 is outside 1\.\.65535/]
  ]
  for (const [f, field, says] of refused) {
    t.throws(() => buildNetworkConfig(f), { field, message: says }, says.source)
  }
})

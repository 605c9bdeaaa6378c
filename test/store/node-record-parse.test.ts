import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { parseNodeRecord } from '../../lib/store/node-record-parse'
import { isEndpointError, parseEndpoint, parseRecordEndpoint } from '../../lib/store/endpoint'
import { isWireguardKey } from '../../lib/store/wireguard-key'
import { type RecordProblem, isRecordError } from '../../lib/store/record-error'
import { parseSubnetValue } from '../../lib/store/subnet-value'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' } })
const v4only = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })
const KEY = '/podmesh/default/nodes/node-1'
const PUB = Buffer.alloc(32, 7).toString('base64')

const good = (): Record<string, unknown> => ({
  v: 1,
  name: 'node-1',
  generation: 3,
  endpoint: '192.0.2.11:51820',
  publicKey: PUB,
  podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
  vxlan: { mac: '02:42:ac:11:00:02' },
  mtu: 1420,
  location: 'rack-1',
  since: '2024-01-02T03:04:05.000Z'
})

t.test('a good record parses to exactly its fields', async t => {
  t.strictSame(parseNodeRecord(KEY, JSON.stringify(good()), config), good())
  const minimal = { v: 1, name: 'node-1', generation: 0, endpoint: '[2001:db8::11]:51820', podCIDRs: ['10.244.1.0/24'], mtu: 576 }
  t.strictSame(parseNodeRecord(KEY, JSON.stringify(minimal), v4only), minimal)
})

interface Bad { name: string, value: string, problem: RecordProblem, says: RegExp, config?: typeof config }
const withField = (k: string, v: unknown): string => JSON.stringify({ ...good(), [k]: v })
const without = (k: string): string => { const g = good(); delete g[k]; return JSON.stringify(g) }
const bad: Bad[] = [
  { name: 'not JSON', value: '{"v":1,', problem: 'json', says: /not JSON/ },
  { name: 'JSON array', value: '[1]', problem: 'type', says: /must be a JSON object/ },
  { name: 'huge value', value: JSON.stringify({ ...good(), pad: 'x'.repeat(20000) }), problem: 'tooLarge', says: /limit 16384/ },
  { name: 'unknown field', value: withField('routes', []), problem: 'unknownField', says: /unknown field "routes"/ },
  { name: 'wrong version', value: withField('v', 2), problem: 'version', says: /unsupported record version 2/ },
  { name: 'name differs from key', value: withField('name', 'node-2'), problem: 'name', says: /"node-2" does not match the key's node name "node-1"/ },
  { name: 'name invalid', value: withField('name', 'Node_1'), problem: 'name', says: /not a valid node name/ },
  { name: 'negative generation', value: withField('generation', -1), problem: 'generation', says: /non-negative integer/ },
  { name: 'fractional generation', value: withField('generation', 1.5), problem: 'generation', says: /non-negative integer/ },
  { name: 'endpoint without port', value: withField('endpoint', '192.0.2.11'), problem: 'endpoint', says: /not ip:port/ },
  { name: 'endpoint port 0', value: withField('endpoint', '192.0.2.11:0'), problem: 'endpoint', says: /port 0 is outside/ },
  { name: 'IPv6 endpoint without brackets', value: withField('endpoint', '2001:db8::1:51820'), problem: 'endpoint', says: /not ip:port/ },
  { name: 'endpoint hostname', value: withField('endpoint', 'node-1.example:51820'), problem: 'endpoint', says: /not ip:port/ },
  { name: 'endpoint unspecified', value: withField('endpoint', '0.0.0.0:51820'), problem: 'endpoint', says: /unspecified/ },
  { name: 'endpoint non-canonical IPv6', value: withField('endpoint', '[2001:DB8::1]:51820'), problem: 'endpoint', says: /not in canonical form/ },
  // Endpoints that can never be right (issue #10).
  { name: 'endpoint unspecified IPv6', value: withField('endpoint', '[::]:51820'), problem: 'endpoint', says: /"\[::\]:51820": the unspecified address/ },
  { name: 'endpoint "this network"', value: withField('endpoint', '0.1.2.3:51820'), problem: 'endpoint', says: /"this network"/ },
  { name: 'endpoint loopback', value: withField('endpoint', '127.0.0.1:51820'), problem: 'endpoint', says: /"127\.0\.0\.1:51820": loopback \(127\.0\.0\.0\/8\), not a reachable endpoint/ },
  { name: 'endpoint IPv6 loopback', value: withField('endpoint', '[::1]:51820'), problem: 'endpoint', says: /loopback \(::1\/128\)/ },
  { name: 'endpoint link-local', value: withField('endpoint', '169.254.1.1:51820'), problem: 'endpoint', says: /link-local/ },
  { name: 'endpoint IPv6 link-local', value: withField('endpoint', '[fe80::1]:51820'), problem: 'endpoint', says: /link-local.*fe80::\/10/ },
  { name: 'endpoint multicast', value: withField('endpoint', '239.1.2.3:51820'), problem: 'endpoint', says: /multicast \(224\.0\.0\.0\/4\)/ },
  { name: 'endpoint IPv6 multicast', value: withField('endpoint', '[ff02::1]:51820'), problem: 'endpoint', says: /multicast \(ff00::\/8\)/ },
  { name: 'endpoint broadcast', value: withField('endpoint', '255.255.255.255:51820'), problem: 'endpoint', says: /limited broadcast/ },
  { name: 'endpoint inside the IPv4 pod range', value: withField('endpoint', '10.244.9.9:51820'), problem: 'endpoint', says: /inside the cluster's pod range 10\.244\.0\.0\/16/ },
  { name: 'endpoint inside the IPv6 pod range', value: withField('endpoint', '[fd00:10:244:9::1]:51820'), problem: 'endpoint', says: /inside the cluster's pod range fd00:10:244::\/56/ },
  { name: 'all-zero public key', value: withField('publicKey', 'A'.repeat(43) + '='), problem: 'publicKey', says: /not all zero/ },
  { name: 'public key too short', value: withField('publicKey', Buffer.alloc(31).toString('base64')), problem: 'publicKey', says: /32-byte/ },
  { name: 'public key not base64', value: withField('publicKey', '!'.repeat(43) + '='), problem: 'publicKey', says: /32-byte/ },
  { name: 'pod CIDR outside the cluster', value: withField('podCIDRs', ['10.245.1.0/24', 'fd00:10:244:1::/64']), problem: 'podCIDRs', says: /outside the cluster range 10\.244\.0\.0\/16/ },
  { name: 'pod CIDR wrong length', value: withField('podCIDRs', ['10.244.0.0/23', 'fd00:10:244:1::/64']), problem: 'podCIDRs', says: /not a \/24/ },
  { name: 'pod CIDR not canonical', value: withField('podCIDRs', ['10.244.1.0/24', 'fd00:10:244:1:0::/64']), problem: 'podCIDRs', says: /not canonical/ },
  { name: 'pod CIDR host bits', value: withField('podCIDRs', ['10.244.1.1/24', 'fd00:10:244:1::/64']), problem: 'podCIDRs', says: /host bits set/ },
  { name: 'missing a family', value: withField('podCIDRs', ['10.244.1.0/24']), problem: 'podCIDRs', says: /exactly one per family/ },
  { name: 'families swapped', value: withField('podCIDRs', ['fd00:10:244:1::/64', '10.244.1.0/24']), problem: 'podCIDRs', says: /must be an IPv4 subnet/ },
  { name: 'podCIDRs not an array', value: withField('podCIDRs', '10.244.1.0/24'), problem: 'podCIDRs', says: /array of CIDR strings/ },
  { name: 'multicast MAC', value: withField('vxlan', { mac: '01:00:5e:00:00:01' }), problem: 'mac', says: /not a unicast MAC/ },
  { name: 'upper-case MAC', value: withField('vxlan', { mac: '02:42:AC:11:00:02' }), problem: 'mac', says: /lower-case MAC/ },
  { name: 'MTU too big', value: withField('mtu', 9001), problem: 'mtu', says: /1280\.\.9000/ },
  { name: 'MTU below IPv6 minimum', value: withField('mtu', 1200), problem: 'mtu', says: /1280\.\.9000/ },
  { name: 'MTU missing', value: without('mtu'), problem: 'mtu', says: /mtu undefined/ },
  { name: 'location with spaces', value: withField('location', 'rack 1'), problem: 'location', says: /\[A-Za-z0-9\._-\]/ },
  { name: 'location too long', value: withField('location', 'x'.repeat(64)), problem: 'location', says: /1-63 characters/ },
  { name: 'since not a time', value: withField('since', 'yesterday'), problem: 'since', says: /not an ISO 8601 time/ }
]

t.test('bad records are rejected with the problem named', async t => {
  t.ok(bad.length >= 15)
  for (const c of bad) {
    let err: unknown
    try { parseNodeRecord(KEY, c.value, c.config ?? config) } catch (e) { err = e }
    t.ok(isRecordError(err), `${c.name}: a RecordError`)
    if (!isRecordError(err)) continue
    t.equal(err.problem, c.problem, `${c.name}: problem`)
    t.match(err.message, c.says, `${c.name}: message`)
    t.equal(err.key, KEY)
  }
})

t.test('endpoints', async t => {
  t.strictSame(parseEndpoint('192.0.2.1:51820'), { family: 4, ip: '192.0.2.1', addr: 0xc0000201n, port: 51820 })
  t.strictSame(parseEndpoint('[2001:db8::1]:1'), { family: 6, ip: '2001:db8::1', addr: 0x20010db8000000000000000000000001n, port: 1 })
  t.throws(() => parseEndpoint('[192.0.2.1]:1'), /brackets are only for IPv6/)
  // The kernel's text is read leniently (canonicalised), a record's strictly.
  t.match(parseEndpoint('[2001:DB8:0::1]:1'), { family: 6, ip: '2001:db8::1', port: 1 })
  t.throws(() => parseRecordEndpoint('[2001:DB8:0::1]:1'), { problem: 'canonical' })
  t.throws(() => parseEndpoint('2001:db8::1:51820'), { problem: 'syntax' })
  t.throws(() => parseEndpoint('192.0.2.1:65536'), { problem: 'port' })
  t.ok(isEndpointError((() => { try { parseRecordEndpoint('127.0.0.1:1') } catch (e) { return e } })()))
  t.throws(() => parseRecordEndpoint('127.0.0.1:1'), { problem: 'unusable' })
  t.match(parseRecordEndpoint('[2001:db8::11]:51820'), { family: 6, ip: '2001:db8::11', port: 51820 })
})

t.test('WireGuard keys: one check for records and the key file', async t => {
  t.ok(isWireguardKey('udnnE/gZXU6aWrCw0/7D4wVURD8rl2ZHjy6CUS+Nuxc='))
  t.notOk(isWireguardKey('A'.repeat(43) + '='), 'all-zero')
  t.notOk(isWireguardKey('A'.repeat(42) + 'B='), 'last character with stray low bits')
  t.notOk(isWireguardKey('udnnE/gZXU6aWrCw0/7D4wVURD8rl2ZHjy6CUS+Nuxc'), 'no padding')
})

t.test('subnet values', async t => {
  t.equal(parseSubnetValue('k', '{"v":1,"node":"n1"}'), 'n1')
  t.throws(() => parseSubnetValue('k', 'n1'), { problem: 'json' })
  t.throws(() => parseSubnetValue('k', '{"v":1,"node":"N 1"}'), { problem: 'name' })
  t.throws(() => parseSubnetValue('k', '{"v":1,"node":"n1","x":1}'), { problem: 'unknownField' })
  t.throws(() => parseSubnetValue('k', '{"node":"n1"}'), { problem: 'version' })
})

import t from 'tap'
import {
  parseCidr, formatCidr, canonicalCidr, parseIp, formatIp, containsCidr, containsIp, overlaps,
  subnetCount, nthSubnet, subnetIndex, isCidrError
} from '../../lib/ipam/cidr'

t.test('canonical text of both families (RFC 5952 for IPv6)', async t => {
  const cases: Array<[string, string]> = [
    ['10.244.0.0/16', '10.244.0.0/16'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['192.0.2.7/32', '192.0.2.7/32'],
    ['fd00:10:244::/56', 'fd00:10:244::/56'],
    ['FD00:0010:0244:0000:0000:0000:0000:0000/56', 'fd00:10:244::/56'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
    ['2001:db8:0:1:1:1:1:1/128', '2001:db8:0:1:1:1:1:1/128'],
    ['::/0', '::/0'],
    ['::1/128', '::1/128'],
    ['::ffff:192.0.2.1/128', '::ffff:c000:201/128']
  ]
  for (const [input, want] of cases) t.equal(canonicalCidr(input), want, input)
  t.equal(canonicalCidr('FD00:0010:0244:0000:0000:0000:0000:0000/56'), 'fd00:10:244::/56', 'memoised result is the same')
})

t.test('malformed prefixes are rejected with a message naming them', async t => {
  const bad: Array<[string, RegExp]> = [
    ['10.244.0.0', /missing \/prefix-length/],
    ['10.244.0.1/16', /host bits set \(did you mean 10\.244\.0\.0\/16\?\)/],
    ['10.244.0.0/33', /prefix length 33 > 32/],
    ['fd00::/129', /prefix length 129 > 128/],
    ['10.244.0.0/x', /malformed prefix length/],
    ['10.256.0.0/16', /not an IP address/],
    ['fd00:::1/64', /not an IP address/],
    ['', /missing \/prefix-length/]
  ]
  for (const [input, msg] of bad) {
    t.throws(() => parseCidr(input), msg, JSON.stringify(input))
    try { parseCidr(input) } catch (e) { t.ok(isCidrError(e), 'typed CidrError') }
  }
  t.equal(formatCidr(parseCidr('10.244.0.1/16', { allowHostBits: true })), '10.244.0.0/16')
})

t.test('containment and overlap never cross families', async t => {
  const range = parseCidr('10.244.0.0/16')
  t.ok(containsCidr(range, parseCidr('10.244.7.0/24')))
  t.notOk(containsCidr(range, parseCidr('10.245.0.0/24')))
  t.notOk(containsCidr(parseCidr('10.244.7.0/24'), range), 'a subnet does not contain its range')
  t.ok(overlaps(parseCidr('10.244.7.0/24'), range))
  t.notOk(overlaps(parseCidr('10.0.0.0/8'), parseCidr('fd00::/8')))
  const ip = parseIp('10.244.7.9')
  t.ok(containsIp(range, ip.family, ip.addr))
  t.equal(formatIp(6, parseIp('fd00:10:244:7::').addr), 'fd00:10:244:7::')
})

t.test('cutting a range into node subnets', async t => {
  const r4 = parseCidr('10.244.0.0/16')
  t.equal(subnetCount(r4, 24), 256n)
  t.equal(subnetCount(r4, 15), 0n, 'a subnet larger than its range does not fit')
  t.equal(formatCidr(nthSubnet(r4, 24, 7n)), '10.244.7.0/24')
  t.equal(subnetIndex(r4, parseCidr('10.244.255.0/24')), 255n)
  const r6 = parseCidr('fd00:10:244::/56')
  t.equal(subnetCount(r6, 64), 256n)
  t.equal(formatCidr(nthSubnet(r6, 64, 255n)), 'fd00:10:244:ff::/64')
  t.equal(subnetCount(parseCidr('fd00::/8'), 64), 1n << 56n, 'IPv6 counts need bigint')
})

import t from 'tap'
import { isKeyError, nodeKey, parseKey, prefixEnd, statusKey, subnetKey, configKey } from '../../lib/store/keys'

const P = '/podmesh/default/'

t.test('layout', async t => {
  t.equal(configKey(P), '/podmesh/default/config')
  t.equal(subnetKey(P, '10.244.3.0/24'), '/podmesh/default/subnets/10.244.3.0-24')
  t.equal(subnetKey(P, 'fd00:10:244:3::/64'), '/podmesh/default/subnets/fd00:10:244:3::-64')
  t.equal(nodeKey(P, 'node-1'), '/podmesh/default/nodes/node-1')
  t.equal(statusKey(P, 'node-1'), '/podmesh/default/status/node-1')
  t.equal(prefixEnd('/a/').toString(), '/a0')
})

t.test('keys parse back', async t => {
  t.strictSame(parseKey(P, configKey(P)), { kind: 'config' })
  t.strictSame(parseKey(P, subnetKey(P, '10.244.3.0/24')), { kind: 'subnet', cidr: '10.244.3.0/24' })
  t.strictSame(parseKey(P, subnetKey(P, 'fd00:10:244:3::/64')), { kind: 'subnet', cidr: 'fd00:10:244:3::/64' })
  t.strictSame(parseKey(P, nodeKey(P, 'a.b-c')), { kind: 'node', name: 'a.b-c' })
  t.strictSame(parseKey(P, statusKey(P, 'n1')), { kind: 'status', name: 'n1' })
})

t.test('malformed keys are rejected', async t => {
  const bad: Array<[string, RegExp]> = [
    ['/other/nodes/x', /not under prefix/],
    [`${P}nodes/UPPER`, /not a valid node name/],
    [`${P}nodes/-lead`, /not a valid node name/],
    [`${P}nodes/a/b`, /not a valid node name/],
    [`${P}nodes/`, /not a valid node name/],
    [`${P}nodes/${'x'.repeat(64)}`, /not a valid node name/],
    [`${P}subnets/10.244.3.0`, /no "-<prefix length>"/],
    [`${P}subnets/10.244.3.1-24`, /not a CIDR: .*host bits/],
    [`${P}subnets/fd00:0::-64`, /not canonical/],
    [`${P}subnets/banana-24`, /not a CIDR/],
    [`${P}leases/x`, /unknown directory/],
    [`${P}configs`, /unknown key/]
  ]
  for (const [key, re] of bad) {
    t.throws(() => parseKey(P, key), re, key)
    try { parseKey(P, key) } catch (e) { t.ok(isKeyError(e)) }
  }
})

import t from 'tap'
import { isConfigError } from '../../lib/config/config-error'
import { checkRangesAgainstHost } from '../../lib/config/network-host'
import { parseNetworkConfig } from '../../lib/config/network-parse'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.0.0.0/8' }, ipv6: { cidr: 'fd00:10::/48' } })

t.test('pod ranges that swallow the underlay or etcd are refused, naming both', async t => {
  const cases: Array<{ name: string, host: Parameters<typeof checkRangesAgainstHost>[1], field: string, says: RegExp }> = [
    { name: 'underlay inside the IPv4 range', host: { underlay: ['10.1.2.3'] }, field: 'ipv4.cidr', says: /10\.0\.0\.0\/8 contains 10\.1\.2\.3 \(this node's underlay address\)/ },
    { name: 'underlay inside the IPv6 range', host: { underlay: ['fd00:10::7'] }, field: 'ipv6.cidr', says: /fd00:10::\/48 contains fd00:10::7 \(this node's underlay address\)/ },
    { name: 'etcd endpoint inside the range', host: { etcdEndpoints: ['http://192.0.2.1:2379', 'https://10.9.9.9:2379'] }, field: 'ipv4.cidr', says: /contains 10\.9\.9\.9 \(etcd endpoint https:\/\/10\.9\.9\.9:2379\)/ },
    { name: 'IPv6 etcd endpoint inside the range', host: { etcdEndpoints: ['http://[fd00:10::1]:2379'] }, field: 'ipv6.cidr', says: /contains fd00:10::1 \(etcd endpoint/ }
  ]
  for (const c of cases) {
    let err: unknown
    try { checkRangesAgainstHost(config, c.host) } catch (e) { err = e }
    t.ok(isConfigError(err), c.name)
    if (!isConfigError(err)) continue
    t.equal(err.problem, 'overlap', c.name)
    t.equal(err.field, c.field, c.name)
    t.match(err.message, c.says, c.name)
  }
})

t.test('addresses outside the ranges, and etcd host names, pass', async t => {
  t.doesNotThrow(() => checkRangesAgainstHost(config, {
    underlay: ['192.0.2.11', '2001:db8::11'],
    etcdEndpoints: ['http://127.0.0.1:2379', 'https://etcd.example:2379', 'http://[2001:db8::1]:2379']
  }))
})

t.test('a service range that holds the underlay or an etcd endpoint is refused', async t => {
  const withServices = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.0.0.0/8' }, ipv6: { cidr: 'fd00:10::/48' }, services: { ipv4: '192.0.2.0/28', ipv6: '2001:db8::/120' } })
  t.throws(() => checkRangesAgainstHost(withServices, { underlay: ['192.0.2.5'] }), { field: 'services.ipv4', problem: 'overlap', message: /192\.0\.2\.0\/28 contains 192\.0\.2\.5 \(this node's underlay address\); service rules would capture it/ })
  t.throws(() => checkRangesAgainstHost(withServices, { etcdEndpoints: ['http://[2001:db8::9]:2379'] }), { field: 'services.ipv6', problem: 'overlap' })
  t.doesNotThrow(() => checkRangesAgainstHost(withServices, { underlay: ['192.0.2.16'] }))
})

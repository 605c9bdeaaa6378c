import t from 'tap'
import { formatIp, parseIp } from '../../lib/ipam/cidr'
import { outOfRange, pickAddress, pickPort, randomBelow, usableRange, usableText } from '../../lib/store/service-pick'

const ip = (s: string): bigint => parseIp(s).addr

t.test('usable addresses: never the network address, never the IPv4 broadcast', async t => {
  const v4 = usableRange('10.96.0.0/28')
  t.equal(usableText(v4), '10.96.0.1-10.96.0.14')
  t.equal(outOfRange(v4, ip('10.96.0.0')), 'the network address')
  t.equal(outOfRange(v4, ip('10.96.0.15')), 'the broadcast address')
  t.equal(outOfRange(v4, ip('10.96.0.16')), 'outside')
  t.equal(outOfRange(v4, ip('10.96.0.1')), undefined)
  t.equal(outOfRange(v4, ip('10.96.0.14')), undefined)
  const v6 = usableRange('fd00:96::/124')
  t.equal(usableText(v6), 'fd00:96::1-fd00:96::f', 'IPv6 has no broadcast: the last address is usable')
  t.equal(outOfRange(v6, ip('fd00:96::')), 'the network address')
  t.equal(outOfRange(v6, ip('fd00:96::f')), undefined)
})

t.test('first free at or after the random start, wrapping; undefined when full', async t => {
  const r = usableRange('10.96.0.0/28')
  const at = (n: bigint) => () => n
  t.equal(formatIp(4, pickAddress(r, new Set(), at(0n)) ?? 0n), '10.96.0.1')
  t.equal(formatIp(4, pickAddress(r, new Set([ip('10.96.0.6')]), at(5n)) ?? 0n), '10.96.0.7', 'skips a taken one')
  t.equal(formatIp(4, pickAddress(r, new Set([ip('10.96.0.13'), ip('10.96.0.14')]), at(12n)) ?? 0n), '10.96.0.1', 'wraps to the start')
  const all = new Set<bigint>()
  for (let a = r.first; a <= r.last; a++) all.add(a)
  t.equal(pickAddress(r, all, at(3n)), undefined)
  all.delete(ip('10.96.0.9'))
  t.equal(formatIp(4, pickAddress(r, all, at(13n)) ?? 0n), '10.96.0.9', 'the last free one is found from any start')
  // Never the reserved addresses, whatever the random source says.
  for (let i = 0n; i < 14n; i++) {
    const a = pickAddress(r, new Set(), at(i)) ?? 0n
    t.ok(outOfRange(r, a) === undefined, `start ${i} → ${formatIp(4, a)}`)
  }
  t.equal(pickPort(30000, 30002, new Set([30002]), at(2n)), 30000)
  t.equal(pickPort(30000, 30002, new Set([30000, 30001, 30002]), at(0n)), undefined)
  t.equal(pickPort(80, 80, new Set(), randomBelow), 80)
})

t.test('randomBelow stays below n', async t => {
  for (const n of [1n, 2n, 14n, 1048575n]) {
    for (let i = 0; i < 200; i++) {
      const v = randomBelow(n)
      if (v < 0n || v >= n) t.fail(`randomBelow(${n}) gave ${v}`)
    }
  }
  t.pass('200 draws each within range')
})

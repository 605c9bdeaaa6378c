// Two sites joined through two routers by a narrower link (IPv4 and IPv6, documentation
// ranges): site A 192.0.2.0/24 + 2001:db8:a::/64 behind r1, site B 198.51.100.0/24 +
// 2001:db8:b::/64 behind r2, r1–r2 203.0.113.0/30 + 2001:db8:c::/64 at `narrowMtu`. Each site
// is one namespace (`a`, `b`); the harness Lab owns and removes everything.
import type { Lab, Netns } from './netns'

export interface TwoSites {
  a: Netns
  b: Netns
  r1: Netns
  r2: Netns
  /** The router-side ends of the narrow link (r1's, r2's). */
  narrow: [string, string]
  /** Site A's own interface and r1's end of it. */
  aLink: [string, string]
}

export async function twoSites (lab: Lab, narrowMtu = 1400): Promise<TwoSites> {
  const a = await lab.netns('a')
  const r1 = await lab.netns('r1')
  const r2 = await lab.netns('r2')
  const b = await lab.netns('b')
  const aLink = await lab.veth({ ns: a, addresses: ['192.0.2.11/24', '2001:db8:a::11/64'] }, { ns: r1, addresses: ['192.0.2.254/24', '2001:db8:a::1/64'] })
  const narrow = await lab.veth({ ns: r1, addresses: ['203.0.113.1/30', '2001:db8:c::1/64'] }, { ns: r2, addresses: ['203.0.113.2/30', '2001:db8:c::2/64'] })
  await lab.veth({ ns: r2, addresses: ['198.51.100.254/24', '2001:db8:b::1/64'] }, { ns: b, addresses: ['198.51.100.11/24', '2001:db8:b::11/64'] })
  await r1.ip(['link', 'set', narrow[0], 'mtu', String(narrowMtu)])
  await r2.ip(['link', 'set', narrow[1], 'mtu', String(narrowMtu)])
  for (const [ns, v4, v6] of [[a, '192.0.2.254', '2001:db8:a::1'], [b, '198.51.100.254', '2001:db8:b::1']] as const) {
    await ns.ip(['route', 'add', 'default', 'via', v4])
    await ns.ip(['-6', 'route', 'add', 'default', 'via', v6])
  }
  await r1.ip(['route', 'add', '198.51.100.0/24', 'via', '203.0.113.2'])
  await r1.ip(['-6', 'route', 'add', '2001:db8:b::/64', 'via', '2001:db8:c::2'])
  await r2.ip(['route', 'add', '192.0.2.0/24', 'via', '203.0.113.1'])
  await r2.ip(['-6', 'route', 'add', '2001:db8:a::/64', 'via', '2001:db8:c::1'])
  for (const r of [r1, r2]) await r.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'])
  return { a, b, r1, r2, narrow, aLink }
}

/** Forgets what routers told `ns` (the kernel's per-destination path MTU cache). */
export async function forgetPathMtu (ns: Netns): Promise<void> {
  await ns.exec('ip', ['-4', 'route', 'flush', 'cache'])
  await ns.exec('ip', ['-6', 'route', 'flush', 'cache'])
}

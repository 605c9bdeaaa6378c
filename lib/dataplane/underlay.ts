// Finds this node's underlay: the IP other nodes reach it at and the MTU of the interface that
// carries it (the tunnel MTU is derived from it).

import { parseIp, formatIp } from '../ipam/cidr'
import { run } from './exec'
import type { Rtnl } from './rtnl'

export interface Underlay { ip: string, ifname: string, mtu: number }

export class UnderlayError extends Error {
  readonly code = 'EUNDERLAY'
  constructor (message: string) { super(message); this.name = 'UnderlayError' }
}
export const isUnderlayError = (e: unknown): e is UnderlayError => e instanceof UnderlayError

const isGlobal = (ip: string): boolean => !ip.startsWith('fe80:') && !ip.startsWith('127.') && ip !== '::1'

export async function findUnderlay (rtnl: Rtnl, want: { address?: string, interface?: string }): Promise<Underlay> {
  const links = await rtnl.links()
  const addrs = await rtnl.addresses()
  if (want.address !== undefined) {
    const { family, addr } = parseIp(want.address)
    const canonical = formatIp(family, addr)
    const a = addrs.find(x => x.ip === canonical)
    // The address may be a NAT'd public one that is not on any interface: use the default route's MTU.
    const link = a === undefined ? await defaultRouteLink(rtnl) : links.find(l => l.index === a.index)
    if (link === undefined) throw new UnderlayError(`public address ${want.address} is not on any interface and there is no default route to take the MTU from`)
    return { ip: canonical, ifname: link.name, mtu: link.mtu }
  }
  if (want.interface !== undefined) {
    const link = links.find(l => l.name === want.interface)
    if (link === undefined) throw new UnderlayError(`public interface ${want.interface} does not exist`)
    const a = addrs.filter(x => x.index === link.index && isGlobal(x.ip)).sort((x, y) => x.family - y.family)[0]
    if (a === undefined) throw new UnderlayError(`public interface ${want.interface} has no global address`)
    return { ip: a.ip, ifname: link.name, mtu: link.mtu }
  }
  const link = await defaultRouteLink(rtnl)
  if (link === undefined) throw new UnderlayError('no --public-address or --public-interface given and no default route to find the underlay from')
  const a = addrs.filter(x => x.index === link.index && isGlobal(x.ip)).sort((x, y) => x.family - y.family)[0]
  if (a === undefined) throw new UnderlayError(`default-route interface ${link.name} has no global address`)
  return { ip: a.ip, ifname: link.name, mtu: link.mtu }
}

async function defaultRouteLink (rtnl: Rtnl): Promise<{ name: string, mtu: number, index: number } | undefined> {
  // Asking the kernel for the route to a documentation address sends nothing on the wire.
  for (const target of ['192.0.2.255', '2001:db8::ffff']) {
    try {
      const { stdout } = await run('ip', ['-j', 'route', 'get', target])
      const dev = (JSON.parse(stdout) as Array<{ dev?: string }>)[0]?.dev
      const link = dev === undefined ? undefined : (await rtnl.links()).find(l => l.name === dev)
      if (link !== undefined && link.name !== 'lo') return link
    } catch { /* no route for this family */ }
  }
  return undefined
}

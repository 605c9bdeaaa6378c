// Finds this node's underlay: the IP other nodes reach it at and the MTU of the interface that
// carries it (the tunnel MTU is derived from it). The same choice serves the start and every
// re-evaluation after the node's addresses changed (`keep`: the address in use).

import { parseIp, formatIp } from '../ipam/cidr'
import { run } from './exec'
import type { Address, Rtnl } from './rtnl'

export interface Underlay { ip: string, ifname: string, mtu: number }

export class UnderlayError extends Error {
  readonly code = 'EUNDERLAY'
  constructor (message: string) { super(message); this.name = 'UnderlayError' }
}
export const isUnderlayError = (e: unknown): e is UnderlayError => e instanceof UnderlayError

const isGlobal = (ip: string): boolean => !ip.startsWith('fe80:') && !ip.startsWith('127.') && ip !== '::1'

/**
 * The address to publish among an interface's addresses. At start (no `keep`): the first
 * global address, IPv4 before IPv6. Re-evaluating, `keep` is the address in use: kept while the
 * interface still has it, so an address appearing beside it never moves the endpoint; once it
 * is gone, the first global address of its family. Never another family: VXLAN peers reach only
 * their own, and taking the other family during a renumbering's gap would stick. Kernel order
 * decides among equals (the primary address first). undefined: nothing to take (yet).
 */
export function chooseUnderlayAddress (addrs: readonly Address[], keep?: string): string | undefined {
  const global = addrs.filter(a => isGlobal(a.ip))
  if (keep === undefined) return [...global].sort((x, y) => x.family - y.family)[0]?.ip
  if (global.some(a => a.ip === keep)) return keep
  const family = parseIp(keep).family
  return global.find(a => a.family === family)?.ip
}

/**
 * The underlay for `want`: a fixed address, an interface's, or the default-route interface's.
 * `keep` is the address in use when re-evaluating (see chooseUnderlayAddress); a fixed address
 * ignores it. Throws UnderlayError when there is nothing to publish.
 */
export async function findUnderlay (rtnl: Rtnl, want: { address?: string, interface?: string }, opts: { keep?: string } = {}): Promise<Underlay> {
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
    return onLink(link, addrs, `public interface ${link.name}`, opts.keep)
  }
  const link = await defaultRouteLink(rtnl)
  if (link === undefined) throw new UnderlayError('no --public-address or --public-interface given and no default route to find the underlay from')
  return onLink(link, addrs, `default-route interface ${link.name}`, opts.keep)
}

function onLink (link: { name: string, mtu: number, index: number }, addrs: readonly Address[], what: string, keep: string | undefined): Underlay {
  const ip = chooseUnderlayAddress(addrs.filter(x => x.index === link.index), keep)
  if (ip === undefined) {
    const which = keep === undefined ? 'global address' : `global IPv${parseIp(keep).family} address (${keep} is gone)`
    throw new UnderlayError(`${what} has no ${which}`)
  }
  return { ip, ifname: link.name, mtu: link.mtu }
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

// The data plane as the daemon sees it: read the kernel into an ObservedState, apply a Plan.
// It composes the backends (wireguard/, vxlan/) and the route reconciler; the daemon never
// learns which backend runs. An observe costs one netlink dump per object kind and at most one
// `wg show dump` (re-parsing only the peer lines that changed since the last); an apply at most
// one `wg` invocation.

import type { ObservedState, Plan } from '../mesh/types'
import type { Rtnl } from './rtnl'
import { observeRoutes, applyRoutes } from './routes'
import { observeWireguard, prepareWireguard, deleteDevice as deleteWireguardDevice, type WireguardMode } from './wireguard/device'
import { observeVxlan, applyVxlan } from './vxlan/device'
import { DumpReader } from './wireguard/conf'

export interface KernelOptions {
  rtnl: Rtnl
  devices: { wireguard: string, vxlan: string }
  /** Present when the WireGuard backend is in use. */
  privateKeyFile?: string
  wgMode: WireguardMode
}

export class Kernel {
  /** The WireGuard dump of the previous observe: a resync re-parses only the peer lines that changed. */
  private readonly wgDumps = new DumpReader()

  constructor (private readonly o: KernelOptions) {}

  async observe (): Promise<ObservedState> {
    const links = await this.o.rtnl.links()
    const names = new Map(links.map(l => [l.index, l.name]))
    const hasWg = links.some(l => l.name === this.o.devices.wireguard)
    const [wireguard, vxlan, routes] = await Promise.all([
      hasWg ? observeWireguard(this.o.devices.wireguard, this.o.rtnl, this.wgDumps) : Promise.resolve(undefined),
      observeVxlan(this.o.rtnl, this.o.devices.vxlan, links),
      observeRoutes(this.o.rtnl, names)
    ])
    return {
      routes,
      ...(wireguard !== undefined ? { wireguard } : {}),
      ...(vxlan !== undefined ? { vxlan } : {})
    }
  }

  async apply (p: Plan): Promise<void> {
    for (const name of p.deleteDevices) await this.deleteDevice(name)
    let configurePeers = async (): Promise<unknown> => undefined
    if (p.wireguard !== undefined) {
      if (this.o.privateKeyFile === undefined) throw new Error('WireGuard plan without a private key file')
      configurePeers = (await prepareWireguard(p.wireguard, { rtnl: this.o.rtnl, privateKeyFile: this.o.privateKeyFile, mode: this.o.wgMode })).configurePeers
    }
    // VXLAN's neighbour and FDB entries go in before the routes that use them.
    if (p.vxlan !== undefined) await applyVxlan(this.o.rtnl, p.vxlan)
    // Routes need the WireGuard device (up, with its addresses), not its peers: the one `wg`
    // invocation and the route batch run side by side. Both must succeed for the apply to count.
    const results = await Promise.allSettled([configurePeers(), applyRoutes(this.o.rtnl, p.addRoutes, p.delRoutes)])
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  /** Decommission: both tunnel devices go, and their routes with them. */
  async teardown (): Promise<void> {
    await this.deleteDevice(this.o.devices.wireguard)
    await this.deleteDevice(this.o.devices.vxlan)
  }

  private async deleteDevice (name: string): Promise<void> {
    if (name === this.o.devices.wireguard) return await deleteWireguardDevice(name, this.o.rtnl)
    const link = await this.o.rtnl.link(name)
    if (link !== undefined) await this.o.rtnl.deleteLink(link.index, name)
  }
}

// Who this node is on the wire, found once at start: its underlay (address, interface, MTU),
// the tunnel MTU derived from it, its WireGuard key and VTEP MAC from the state dir. The record
// fields it publishes and the identity the planner trusts are both derived from this one value.

import { mkdir } from 'node:fs/promises'
import type { NetworkConfig } from '../config/network'
import type { DaemonOptions } from '../config/daemon-options'
import type { Rtnl } from '../dataplane/rtnl'
import { findUnderlay, type Underlay } from '../dataplane/underlay'
import { loadOrCreatePrivateKey, type NodeKey } from '../dataplane/keys'
import { loadOrCreateVxlanMac } from '../dataplane/vxlan/mac'
import { primaryTransport, usesVxlan, usesWireguard, type LocalIdentity } from '../mesh/desired'
import { recordMtu } from '../mesh/mtu'
import { parseIp } from '../ipam/cidr'
import { formatEndpoint } from '../store/endpoint'
import type { RecordFields } from '../store/node-lease'

export interface NodeIdentity {
  underlay: Underlay
  /** Tunnel MTU as published in the record: the primary device's with no peers (lib/mesh/mtu.ts). */
  mtu: number
  key?: NodeKey
  vxlanMac?: string
}

export async function resolveIdentity (o: DaemonOptions, config: NetworkConfig, rtnl: Rtnl): Promise<NodeIdentity> {
  const underlay = await findUnderlay(rtnl, underlaySource(o))
  // Private key, VTEP MAC and remembered subnets live here: private to root.
  await mkdir(o.stateDir, { recursive: true, mode: 0o700 })
  const key = usesWireguard(config) ? await loadOrCreatePrivateKey(o.stateDir) : undefined
  const vxlanMac = usesVxlan(config) ? await loadOrCreateVxlanMac(o.stateDir) : undefined
  return {
    underlay,
    mtu: tunnelMtu(config, underlay),
    ...(key !== undefined ? { key } : {}),
    ...(vxlanMac !== undefined ? { vxlanMac } : {})
  }
}

/** Where the underlay comes from: a fixed address, an interface, or the default route. */
export function underlaySource (o: DaemonOptions): { address?: string, interface?: string } {
  return {
    ...(o.publicAddress !== undefined ? { address: o.publicAddress } : {}),
    ...(o.publicInterface !== undefined ? { interface: o.publicInterface } : {})
  }
}

/** The record fields this node publishes about itself. */
export function recordFields (o: DaemonOptions, config: NetworkConfig, id: NodeIdentity): RecordFields {
  return {
    endpoint: formatEndpoint({ ip: id.underlay.ip, port: config.backend.wireguard.port }),
    ...(id.key !== undefined ? { publicKey: id.key.publicKey } : {}),
    ...(id.vxlanMac !== undefined ? { vxlan: { mac: id.vxlanMac } } : {}),
    mtu: id.mtu,
    ...(o.location !== undefined ? { location: o.location } : {})
  }
}

/** What the planner knows of this node: never taken from etcd, where anyone could alter it. */
export function localIdentity (o: DaemonOptions, id: NodeIdentity, podCIDRs: readonly string[]): LocalIdentity {
  return {
    name: o.nodeName,
    podCIDRs,
    underlayIp: id.underlay.ip,
    publicKey: id.key?.publicKey ?? '',
    underlayMtu: id.underlay.mtu,
    ...(o.location !== undefined ? { location: o.location } : {}),
    ...(id.vxlanMac !== undefined ? { vxlanMac: id.vxlanMac } : {}),
    devices: { wireguard: o.wgInterface, vxlan: o.vxlanInterface }
  }
}

/** The tunnel MTU the record publishes: the config's override, else the underlay's minus its own family's overhead. */
export function tunnelMtu (config: NetworkConfig, underlay: Underlay): number {
  return recordMtu(primaryTransport(config), parseIp(underlay.ip).family, underlay.mtu, config.mtu)
}

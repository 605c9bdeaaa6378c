// The CNI network config (a .conflist, CNI 1.0.0) podmeshd writes for its node: the reference
// `bridge` + `host-local` + `portmap` plugins (and podmesh's own, last, when the cluster has
// services), and the gateway addresses that go on the bridge.
// Pure: a function of the node's pod subnets, the cluster's pod CIDRs and the tunnel MTU.

import { containsCidr, formatIp, hostAddr, lastAddr, parseCidr, type Cidr, type Family } from '../ipam/cidr'
import { INTERFACE_NAME_RULE, isInterfaceName } from '../config/interface-name'
import type { PodmeshPluginConf } from '../cni-plugin/conflist-entry'

export const CNI_VERSION = '1.0.0'

export interface ConflistInput {
  /** CNI network name; also names the file (10-<name>.conflist) and host-local's state dir. */
  networkName: string
  /** The bridge the pods' veths attach to (podmeshd creates it, see dataplane/cni/bridge.ts). */
  bridge: string
  /** This node's pod subnets, at most one per family. */
  podCIDRs: string[]
  /** The cluster's pod CIDRs; each node pod subnet must lie inside one of them. */
  clusterCIDRs: string[]
  /** Pod interface MTU: the tunnel's. */
  mtu: number
  /** host-local's state dir; unset means the plugin default /var/lib/cni/networks. */
  dataDir?: string
  /**
   * podmesh's own plugin, last (issue #11): it reports each pod to podmeshd's spool, so services
   * find their endpoints. Set when the cluster has service ranges.
   */
  podmesh?: PodmeshPluginConf
}

export interface IpamRange { subnet: string, gateway: string }
export interface CniRoute { dst: string }

export interface HostLocalIpam {
  type: 'host-local'
  /** One range set per family. */
  ranges: IpamRange[][]
  routes: CniRoute[]
  dataDir?: string
}

export interface BridgePlugin {
  type: 'bridge'
  bridge: string
  isGateway: true
  ipMasq: false
  hairpinMode: true
  mtu: number
  ipam: HostLocalIpam
}

export interface PortmapPlugin {
  type: 'portmap'
  capabilities: { portMappings: true }
  snat: true
}

export interface Conflist {
  cniVersion: typeof CNI_VERSION
  name: string
  plugins: [BridgePlugin, PortmapPlugin] | [BridgePlugin, PortmapPlugin, PodmeshPluginConf]
}

export class CniConfigError extends Error {
  readonly code = 'ECNICONFIG'
  constructor (readonly field: string, message: string, options?: { cause?: unknown }) {
    super(`cni config: ${field}: ${message}`, options)
    this.name = 'CniConfigError'
  }
}
export const isCniConfigError = (e: unknown): e is CniConfigError => e instanceof CniConfigError

// The CNI spec's network-name grammar; the name also lands in a file name, so it must stay this tame.
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
export const isCniNetworkName = (name: string): boolean => NETWORK_NAME.test(name)
export const CNI_NETWORK_NAME_RULE = `must match ${NETWORK_NAME.source}`
const MAX_MTU = 65535
// The smallest MTU each family allows on a link (IPv6 requires 1280, IPv4 576 for reassembly).
const MIN_MTU: Record<Family, number> = { 4: 576, 6: 1280 }
const DEFAULT_ROUTE: Record<Family, string> = { 4: '0.0.0.0/0', 6: '::/0' }

function parseField (field: string, text: string): Cidr {
  try {
    return parseCidr(text)
  } catch (e) {
    throw new CniConfigError(field, (e as Error).message, { cause: e })
  }
}

/** The node's pod subnets, one per family, IPv4 first (so input order never changes the file). */
function podSubnets (podCIDRs: readonly string[]): Cidr[] {
  if (podCIDRs.length === 0) throw new CniConfigError('podCIDRs', 'at least one pod subnet is required')
  const subnets = podCIDRs.map(text => parseField('podCIDRs', text))
  for (const f of [4, 6] as const) {
    if (subnets.filter(s => s.family === f).length > 1) {
      throw new CniConfigError('podCIDRs', `more than one IPv${f} subnet in ${podCIDRs.join(', ')}`)
    }
  }
  for (const s of subnets) {
    // host-local needs the gateway (first host) plus at least one address for a pod.
    if (lastAddr(s) - s.addr < 3n) throw new CniConfigError('podCIDRs', `${formatIp(s.family, s.addr)}/${s.len} is too small for a gateway and pods`)
  }
  return subnets.sort((a, b) => a.family - b.family)
}

const gatewayOf = (s: Cidr): string => formatIp(s.family, hostAddr(s, 1n))
const textOf = (s: Cidr): string => `${formatIp(s.family, s.addr)}/${s.len}`

/** The bridge's addresses: the first host of each pod subnet with its prefix ("10.244.1.1/24", "fd00:10:244:1::1/64"). */
/** The gateway of each pod subnet (the bridge's address there), without its length. */
export function podGateways (podCIDRs: readonly string[]): Array<{ family: Family, ip: string }> {
  return podSubnets(podCIDRs).map(s => ({ family: s.family, ip: gatewayOf(s) }))
}

export function gatewayAddresses (podCIDRs: readonly string[]): string[] {
  return podSubnets(podCIDRs).map(s => `${gatewayOf(s)}/${s.len}`)
}

export function renderConflist (input: ConflistInput): Conflist {
  if (!isCniNetworkName(input.networkName)) {
    throw new CniConfigError('networkName', `"${input.networkName}" ${CNI_NETWORK_NAME_RULE}`)
  }
  if (!isInterfaceName(input.bridge)) throw new CniConfigError('bridge', `"${input.bridge}" is not a valid interface name (${INTERFACE_NAME_RULE})`)
  const subnets = podSubnets(input.podCIDRs)
  const families = subnets.map(s => s.family)
  const minMtu = Math.max(...families.map(f => MIN_MTU[f]))
  if (!Number.isInteger(input.mtu) || input.mtu < minMtu || input.mtu > MAX_MTU) {
    throw new CniConfigError('mtu', `${input.mtu} is not an integer in ${minMtu}..${MAX_MTU}`)
  }
  if (input.dataDir !== undefined && !input.dataDir.startsWith('/')) {
    throw new CniConfigError('dataDir', `"${input.dataDir}" must be an absolute path`)
  }
  const cluster = input.clusterCIDRs.map(text => parseField('clusterCIDRs', text))
  for (const s of subnets) {
    if (!cluster.some(c => containsCidr(c, s))) {
      throw new CniConfigError('podCIDRs', `${textOf(s)} is not inside any cluster CIDR (${input.clusterCIDRs.join(', ') || 'none'})`)
    }
  }
  // Routes only for the families this node serves: a pod without an IPv6 address has no use
  // for an IPv6 route (and host-local would install it without a gateway).
  const dsts = [
    ...cluster.filter(c => families.includes(c.family)).map(textOf),
    ...families.map(f => DEFAULT_ROUTE[f])
  ]
  const routes: CniRoute[] = [...new Set(dsts)].map(dst => ({ dst }))
  const ipam: HostLocalIpam = {
    type: 'host-local',
    ranges: subnets.map(s => [{ subnet: textOf(s), gateway: gatewayOf(s) }]),
    routes,
    ...(input.dataDir !== undefined ? { dataDir: input.dataDir } : {})
  }
  return {
    cniVersion: CNI_VERSION,
    name: input.networkName,
    plugins: [
      { type: 'bridge', bridge: input.bridge, isGateway: true, ipMasq: false, hairpinMode: true, mtu: input.mtu, ipam },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ...(input.podmesh !== undefined ? [{ type: 'podmesh' as const, podDir: input.podmesh.podDir }] : [])
    ] as Conflist['plugins']
  }
}

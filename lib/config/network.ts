// The cluster's network config as stored at <prefix>/config: its types and defaults.
// Parsing and validation live in network-parse.ts; this file is only the shape.

export const CONFIG_VERSION = 1

export type BackendType = 'wireguard' | 'vxlan'

/** One address family's pod range and how it is cut into node subnets. */
export interface FamilyRange {
  /** The cluster's pod CIDR for this family, canonical ("10.244.0.0/16"). */
  cidr: string
  /** Prefix length of each node's subnet (24 for IPv4, 64 for IPv6 by default). */
  subnetLen: number
  /** Optional bounds (inclusive) on the subnets handed out, as subnet CIDRs. */
  subnetMin?: string
  subnetMax?: string
}

export interface WireguardOptions {
  /** UDP listen port of every node's WireGuard interface. */
  port: number
  /** Seconds; 0 disables. */
  persistentKeepalive: number
  /** Mixed mode: peers with the same location label talk over VXLAN, others over WireGuard. */
  vxlanWithinLocation: boolean
}

export interface VxlanOptions {
  vni: number
  port: number
}

/** An inclusive range of NodePorts (Kubernetes' default: 30000-32767). */
export interface PortRange {
  min: number
  max: number
}

/**
 * Where services get their addresses (docs/services.md, "Service ranges and allocation"): a
 * cluster-IP range per family, canonical CIDR text, and the NodePort range. Optional: clusters
 * initialised before Services have no section, and then no service can be added.
 */
export interface ServiceRanges {
  ipv4?: string
  ipv6?: string
  nodePortRange: PortRange
}

export interface NetworkConfig {
  v: 1
  ipv4?: FamilyRange
  ipv6?: FamilyRange
  backend: {
    type: BackendType
    wireguard: WireguardOptions
    vxlan: VxlanOptions
  }
  /** Tunnel MTU override; when absent each node derives it from its underlay MTU and its peers' families (lib/mesh/mtu.ts). */
  mtu?: number
  /** Set by `podmeshctl init --force`: accept a pod range shorter than /8 (IPv4) or /32 (IPv6). */
  allowWideRange?: true
  /** Service cluster-IP ranges and the NodePort range; absent in clusters made before Services. */
  services?: ServiceRanges
}

export const DEFAULTS = {
  subnetLen4: 24,
  subnetLen6: 64,
  wireguardPort: 51820,
  persistentKeepalive: 25,
  vxlanVni: 1,
  vxlanPort: 4789,
  nodePortMin: 30000,
  nodePortMax: 32767
} as const

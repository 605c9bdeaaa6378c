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
}

export const DEFAULTS = {
  subnetLen4: 24,
  subnetLen6: 64,
  wireguardPort: 51820,
  persistentKeepalive: 25,
  vxlanVni: 1,
  vxlanPort: 4789
} as const

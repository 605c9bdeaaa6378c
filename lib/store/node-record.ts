// The node record stored at <prefix>/nodes/<name>: the shape every node publishes and every
// other node reads. Validation of values read back lives in node-record-parse.ts.

export const NODE_RECORD_VERSION = 1

export interface NodeRecord {
  v: 1
  /** The node's identity; also the key suffix. DNS-label-like: [a-z0-9]([-a-z0-9.]*[a-z0-9])?, ≤ 63. */
  name: string
  /** Grows by one with every change the node publishes. */
  generation: number
  /** Underlay endpoint "ip:port" ("192.0.2.11:51820", "[2001:db8::11]:51820"); port is the WireGuard port. */
  endpoint: string
  /** WireGuard public key (base64, 32 bytes); absent for a pure-VXLAN node. */
  publicKey?: string
  /** The node's pod subnets, one per configured family, canonical CIDRs, IPv4 first. */
  podCIDRs: string[]
  /** VXLAN backend data: the VTEP MAC of the node's VXLAN device(s). */
  vxlan?: { mac: string }
  /** The node's tunnel MTU. */
  mtu: number
  /** Optional topology label (a site, a rack): used by mixed mode. */
  location?: string
  /** When the node first joined (ISO 8601); informational. */
  since?: string
}

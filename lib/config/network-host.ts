// A cluster's pod (and service) ranges checked against the addresses one host depends on: its underlay
// address and the etcd endpoints. A pod range containing either would route the tunnel's own
// packets (or the store's) into the tunnel. Per host, so it runs where those are known:
// `podmeshctl init` (etcd endpoints) and podmeshd at start (underlay and etcd endpoints). Pure.
import { containsIp, parseCidr, parseIp } from '../ipam/cidr'
import type { NetworkConfig } from './network'
import { ConfigError } from './config-error'

export interface HostAddresses {
  /** The node's own underlay IP(s). */
  underlay?: readonly string[]
  /** etcd client URLs ("http://10.0.0.5:2379"); host names are skipped (not resolved here). */
  etcdEndpoints?: readonly string[]
}

/** The IP literal of an endpoint URL's host, or undefined for a host name. */
function endpointIp (url: string): string | undefined {
  let host: string
  try { host = new URL(url).hostname } catch { return undefined }
  const bare = host.startsWith('[') ? host.slice(1, -1) : host
  try { parseIp(bare); return bare } catch { return undefined }
}

/** Throws ConfigError 'overlap' naming the range and the address it would swallow. */
export function checkRangesAgainstHost (config: NetworkConfig, host: HostAddresses): void {
  const addresses = [
    ...(host.underlay ?? []).map(ip => ({ ip, what: "this node's underlay address" })),
    ...(host.etcdEndpoints ?? []).flatMap(url => {
      const ip = endpointIp(url)
      return ip === undefined ? [] : [{ ip, what: `etcd endpoint ${url}` }]
    })
  ]
  const ranges = [
    ['ipv4.cidr', config.ipv4?.cidr, 'pod routes'],
    ['ipv6.cidr', config.ipv6?.cidr, 'pod routes'],
    // A service IP is DNATed on every node: one equal to a host's address would hijack it.
    ['services.ipv4', config.services?.ipv4, 'service rules'],
    ['services.ipv6', config.services?.ipv6, 'service rules']
  ] as const
  for (const [field, range, what] of ranges) {
    if (range === undefined) continue
    const c = parseCidr(range)
    for (const a of addresses) {
      const { family, addr } = parseIp(a.ip)
      if (containsIp(c, family, addr)) {
        throw new ConfigError(field, 'overlap', `${range} contains ${a.ip} (${a.what}); ${what} would capture it`)
      }
    }
  }
}

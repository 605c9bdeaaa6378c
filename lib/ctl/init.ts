// `podmeshctl init`: build the network config from flags, validate it, write it to etcd once
// (refusing to overwrite unless --force).
import type { NetworkConfig } from '../config/network'
import { type NetworkFlags, buildNetworkConfig } from '../config/network-parse'
import { checkRangesAgainstHost } from '../config/network-host'
import type { StoreClient } from '../store/client'
import { writeConfig } from '../store/config-store'
import { type OutputFormat, flatten, formatJson, formatTable } from './output'

export const initOptions = {
  'ipv4-cidr': { type: 'string' },
  'ipv6-cidr': { type: 'string' },
  'subnet-len4': { type: 'string' },
  'subnet-len6': { type: 'string' },
  'subnet-min4': { type: 'string' },
  'subnet-max4': { type: 'string' },
  'subnet-min6': { type: 'string' },
  'subnet-max6': { type: 'string' },
  backend: { type: 'string' },
  'wg-port': { type: 'string' },
  keepalive: { type: 'string' },
  'vxlan-vni': { type: 'string' },
  'vxlan-port': { type: 'string' },
  mtu: { type: 'string' },
  'vxlan-within-location': { type: 'boolean' },
  'service-cidr': { type: 'string', multiple: true },
  'node-port-range': { type: 'string' },
  force: { type: 'boolean' }
} as const

export const initHelp = `podmeshctl init [flags]   write the cluster's network config (once)
  --ipv4-cidr CIDR          IPv4 pod range (e.g. 10.244.0.0/16)
  --ipv6-cidr CIDR          IPv6 pod range (e.g. fd00:10:244::/56)
  --subnet-len4 N           IPv4 node subnet length (default 24)
  --subnet-len6 N           IPv6 node subnet length (default 64)
  --subnet-min4/--subnet-max4, --subnet-min6/--subnet-max6 CIDR
                            bounds of automatically allocated subnets
  --backend wireguard|vxlan (default wireguard)
  --wg-port N               WireGuard UDP port (default 51820)
  --keepalive N             WireGuard persistent keepalive seconds, 0 = off (default 25)
  --vxlan-vni N             VXLAN network identifier (default 1)
  --vxlan-port N            VXLAN UDP port (default 4789)
  --mtu N                   tunnel MTU (default: per node from its underlay MTU and its peers' families)
  --vxlan-within-location   WireGuard backend: VXLAN between nodes of the same location
  --service-cidr CIDR       service cluster-IP range, once per family (IPv4 /12-/28, IPv6
                            /108-/124, apart from the pod ranges); none: no services
  --node-port-range MIN-MAX NodePort range (default 30000-32767; needs --service-cidr)
  --force                   overwrite an existing config; also accept a pod range wider than
                            /8 (IPv4) or /32 (IPv6), with a warning (never 0.0.0.0/0, ::/0,
                            loopback, link-local or multicast)
`

/**
 * Validates flags into a config without touching etcd (throws ConfigError naming the flag or
 * field): the ranges must also leave the etcd endpoints podmeshctl uses outside the pod network.
 */
export function initConfig (flags: NetworkFlags, opts: { force: boolean, etcdEndpoints: readonly string[] }): NetworkConfig {
  const config = buildNetworkConfig(flags, { force: opts.force })
  checkRangesAgainstHost(config, { etcdEndpoints: opts.etcdEndpoints })
  return config
}

export async function runInit (client: StoreClient, prefix: string, config: NetworkConfig, force: boolean, format: OutputFormat): Promise<string> {
  const res = await writeConfig(client, prefix, config, { force })
  if (format === 'json') return formatJson({ key: `${prefix}config`, created: res.created, revision: res.revision, config: res.config })
  return `${res.created ? 'wrote' : 'replaced'} ${prefix}config (revision ${res.revision})\n` +
    formatTable([['FIELD', 'VALUE'], ...flatten(res.config)])
}

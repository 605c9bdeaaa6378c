// The node's side of the pod network: the pod bridge with its gateway addresses, the CNI
// conflist that the container runtime reads, and (optional) masquerade for traffic leaving all
// pod CIDRs. Pod↔pod and node↔pod traffic is never NATed: the masquerade chain returns early
// for every cluster destination.

import { parseCidr } from '../ipam/cidr'
import { renderConflist, gatewayAddresses } from '../mesh/cni-config'
import { podmeshPluginEntry } from '../cni-plugin/conflist-entry'
import { ensureBridge, type BridgeChange } from './cni/bridge'
import { conflistPath, removeConflist, writeConflist } from './cni/conflist-file'
import { run } from './exec'
import type { Rtnl } from './rtnl'

export interface PodNetworkSpec {
  bridge: string
  network: string
  confDir: string
  dataDir?: string
  podCIDRs: readonly string[]
  clusterCIDRs: readonly string[]
  mtu: number
  masquerade: boolean
  /** The podmesh plugin's spool, when the conflist carries the plugin (a cluster with services). */
  podDir?: string
}

export const MASQUERADE_CHAIN = 'PODMESH-MASQ'

export async function ensurePodNetwork (rtnl: Rtnl, s: PodNetworkSpec): Promise<{ bridge: BridgeChange, conflistPath: string, conflistWritten: boolean }> {
  const bridge = await ensureBridge(rtnl, { name: s.bridge, addresses: gatewayAddresses(s.podCIDRs), mtu: s.mtu })
  const written = await writeConflist(s.confDir, s.network, conflistFor(s))
  if (s.masquerade) await ensureMasquerade(s.podCIDRs, s.clusterCIDRs)
  else await removeMasquerade()
  return { bridge, conflistPath: conflistPath(s.confDir, s.network), conflistWritten: written }
}

/**
 * The resync's repair: bridge (link state, MTU, gateway addresses — setting a bridge down
 * flushes its IPv6 address) and conflist. Netlink and a file compare only: no process spawned.
 */
export async function repairPodNetwork (rtnl: Rtnl, s: PodNetworkSpec): Promise<string[]> {
  const bridge = await ensureBridge(rtnl, { name: s.bridge, addresses: gatewayAddresses(s.podCIDRs), mtu: s.mtu })
  const written = await writeConflist(s.confDir, s.network, conflistFor(s))
  return [
    ...(bridge.created ? [`bridge ${s.bridge} re-created`] : []),
    ...(bridge.broughtUp ? [`bridge ${s.bridge} brought up`] : []),
    ...(bridge.mtu !== undefined ? [`bridge ${s.bridge} mtu ${bridge.mtu.from} → ${bridge.mtu.to}`] : []),
    ...bridge.addedAddresses.map(a => `bridge ${s.bridge} address ${a} re-added`),
    ...bridge.removedAddresses.map(a => `bridge ${s.bridge} stale address ${a} removed`),
    ...(written ? [`conflist ${conflistPath(s.confDir, s.network)} rewritten`] : [])
  ]
}

const conflistFor = (s: PodNetworkSpec): ReturnType<typeof renderConflist> => renderConflist({
  networkName: s.network,
  bridge: s.bridge,
  podCIDRs: [...s.podCIDRs],
  clusterCIDRs: [...s.clusterCIDRs],
  mtu: s.mtu,
  ...(s.dataDir !== undefined ? { dataDir: s.dataDir } : {}),
  ...(s.podDir !== undefined ? { podmesh: podmeshPluginEntry(s.podDir) } : {})
})

export async function removePodNetwork (rtnl: Rtnl, s: { bridge: string, network: string, confDir: string }): Promise<void> {
  await removeConflist(s.confDir, s.network)
  const link = await rtnl.link(s.bridge)
  if (link !== undefined) await rtnl.deleteLink(link.index, s.bridge)
  await removeMasquerade()
}

/** The iptables-restore input for one family: our chain, rebuilt whole, hooked once into POSTROUTING. */
export function masqueradeRules (family: 4 | 6, podCIDRs: readonly string[], clusterCIDRs: readonly string[]): string | undefined {
  const own = podCIDRs.filter(c => parseCidr(c).family === family)
  if (own.length === 0) return undefined
  const cluster = clusterCIDRs.filter(c => parseCidr(c).family === family)
  const lines = ['*nat', `:${MASQUERADE_CHAIN} - [0:0]`]
  for (const src of own) {
    for (const dst of cluster) lines.push(`-A ${MASQUERADE_CHAIN} -s ${src} -d ${dst} -j RETURN`)
    lines.push(`-A ${MASQUERADE_CHAIN} -s ${src} -j MASQUERADE`)
  }
  lines.push('COMMIT', '')
  return lines.join('\n')
}

async function ensureMasquerade (podCIDRs: readonly string[], clusterCIDRs: readonly string[]): Promise<void> {
  for (const family of [4, 6] as const) {
    const rules = masqueradeRules(family, podCIDRs, clusterCIDRs)
    if (rules === undefined) continue
    const bin = family === 4 ? 'iptables' : 'ip6tables'
    // --noflush: only our chain is replaced; every other rule of the table stays as it was.
    await run(`${bin}-restore`, ['--noflush'], { input: rules })
    try {
      await run(bin, ['-t', 'nat', '-C', 'POSTROUTING', '-j', MASQUERADE_CHAIN, '-m', 'comment', '--comment', 'podmesh'])
    } catch {
      await run(bin, ['-t', 'nat', '-A', 'POSTROUTING', '-j', MASQUERADE_CHAIN, '-m', 'comment', '--comment', 'podmesh'])
    }
  }
}

async function removeMasquerade (): Promise<void> {
  for (const bin of ['iptables', 'ip6tables']) {
    try {
      await run(bin, ['-t', 'nat', '-D', 'POSTROUTING', '-j', MASQUERADE_CHAIN, '-m', 'comment', '--comment', 'podmesh'])
    } catch { /* not hooked: nothing to undo */ }
    try {
      await run(bin, ['-t', 'nat', '-F', MASQUERADE_CHAIN])
      await run(bin, ['-t', 'nat', '-X', MASQUERADE_CHAIN])
    } catch { /* no such chain */ }
  }
}

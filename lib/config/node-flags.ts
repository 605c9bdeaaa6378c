// The node-local flags podmeshd and podmeshctl share (podmeshctl's diff and doctor inspect the
// node the daemon runs on): the underlay, the tunnel device names, and where the CNI conflist goes. Declared once with their
// one validation, so both CLIs take the same values with the same message. Pure.
import { isIP } from 'node:net'
import { ConfigError } from './config-error'
import { INTERFACE_NAME_RULE, isInterfaceName } from './interface-name'
import { CNI_NETWORK_NAME_RULE, isCniNetworkName } from '../mesh/cni-config'
import type { SharedFlag } from './shared-flag'

export type NodeField = 'publicAddress' | 'publicInterface' | 'wgInterface' | 'vxlanInterface' | 'cniConfDir' | 'cniNetwork'

export const NODE_FLAGS = {
  publicAddress: { flag: 'public-address', env: 'PODMESH_PUBLIC_ADDRESS', kind: 'string', arg: 'IP', help: 'underlay IP other nodes reach this node at (fixed: never follows address changes)' },
  publicInterface: { flag: 'public-interface', env: 'PODMESH_PUBLIC_INTERFACE', kind: 'string', arg: 'NAME', help: 'take the underlay IP from this interface (first global address) and follow its changes' },
  wgInterface: { flag: 'wg-interface', env: 'PODMESH_WG_INTERFACE', kind: 'string', arg: 'NAME', help: 'WireGuard interface name', default: 'podmesh0' },
  vxlanInterface: { flag: 'vxlan-interface', env: 'PODMESH_VXLAN_INTERFACE', kind: 'string', arg: 'NAME', help: 'VXLAN interface name', default: 'podmesh-vx' },
  cniConfDir: { flag: 'cni-conf-dir', env: 'PODMESH_CNI_CONF_DIR', kind: 'string', arg: 'DIR', help: 'where the CNI conflist is written', default: '/etc/cni/net.d' },
  cniNetwork: { flag: 'cni-network', env: 'PODMESH_CNI_NETWORK', kind: 'string', arg: 'NAME', help: 'CNI network name (file 10-<name>.conflist)', default: 'podmesh' }
} as const satisfies Record<NodeField, SharedFlag>

/** The value if it is valid for the flag; else a ConfigError naming the flag and the value. */
export function checkNodeFlag (field: NodeField, value: string): string {
  const flag = `--${NODE_FLAGS[field].flag}`
  if (field === 'publicAddress' && isIP(value) === 0) throw new ConfigError(flag, 'type', `"${value}" is not an IP address`)
  if ((field === 'wgInterface' || field === 'vxlanInterface') && !isInterfaceName(value)) {
    throw new ConfigError(flag, 'type', `"${value}" is not a valid interface name (${INTERFACE_NAME_RULE})`)
  }
  // Container runtimes are configured with the absolute path; a relative one would depend on the cwd.
  if (field === 'cniConfDir' && !value.startsWith('/')) throw new ConfigError(flag, 'type', `"${value}" is not an absolute path`)
  if (field === 'cniNetwork' && !isCniNetworkName(value)) throw new ConfigError(flag, 'type', `"${value}" is not a CNI network name (${CNI_NETWORK_NAME_RULE})`)
  return value
}

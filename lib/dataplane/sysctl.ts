// The forwarding sysctls a node needs to route pod traffic (net.ipv4.ip_forward and
// net.ipv6.conf.all.forwarding) and, with services, bridged traffic through netfilter; read and
// set through /proc/sys. /proc/sys/net is per network namespace (the reader's), so this acts on
// the namespace the process runs in.
// Note for operators: IPv6 forwarding makes the kernel ignore router advertisements on
// interfaces whose accept_ra is 1, which matters on hosts configured by SLAAC.

import { promises as fs } from 'node:fs'

export type ForwardingKey = 'net.ipv4.ip_forward' | 'net.ipv6.conf.all.forwarding'
export type BridgeNetfilterKey = 'net.bridge.bridge-nf-call-iptables' | 'net.bridge.bridge-nf-call-ip6tables'
type SysctlKey = ForwardingKey | BridgeNetfilterKey

export interface SysctlChange { key: SysctlKey, from: string, to: string }

export class SysctlError extends Error {
  readonly code = 'ESYSCTL'
  constructor (readonly key: string, readonly op: 'read' | 'write', cause: unknown) {
    super(`${op} ${key}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'SysctlError'
  }
}
export const isSysctlError = (e: unknown): e is SysctlError => e instanceof SysctlError

const path = (key: string): string => `/proc/sys/${key.replace(/\./g, '/')}`

export async function readSysctl (key: SysctlKey): Promise<string> {
  try {
    return (await fs.readFile(path(key), 'utf8')).trim()
  } catch (e) {
    throw new SysctlError(key, 'read', e)
  }
}

async function writeSysctl (key: SysctlKey, value: string): Promise<void> {
  try {
    await fs.writeFile(path(key), `${value}\n`)
  } catch (e) {
    throw new SysctlError(key, 'write', e)
  }
}

/**
 * Turns on forwarding for the families asked for; returns what it changed (empty when all was
 * already on) so the caller can report it. It never turns forwarding off.
 */
export async function ensureForwarding (families: { ipv4: boolean, ipv6: boolean }): Promise<SysctlChange[]> {
  const keys: ForwardingKey[] = [
    ...(families.ipv4 ? ['net.ipv4.ip_forward' as const] : []),
    ...(families.ipv6 ? ['net.ipv6.conf.all.forwarding' as const] : [])
  ]
  return await ensureOn(keys)
}

async function ensureOn (keys: readonly SysctlKey[]): Promise<SysctlChange[]> {
  const changes: SysctlChange[] = []
  for (const key of keys) {
    const from = await readSysctl(key)
    if (from === '1') continue
    await writeSysctl(key, '1')
    changes.push({ key, from, to: '1' })
  }
  return changes
}

/**
 * Bridged pod traffic through netfilter (issue #11): a pod reaching a pod of the same node
 * through a cluster IP gets its reply bridged, and only br_netfilter un-DNATs it (kube-proxy's
 * requirement too). The keys are per network namespace (kernel ≥ 5.3) and exist only while the
 * br_netfilter module is loaded: `missing` says the module is not, which podmeshd reports rather
 * than loading a module for the whole host itself.
 */
export async function ensureBridgeNetfilter (families: { ipv4: boolean, ipv6: boolean }): Promise<{ changes: SysctlChange[], missing: boolean }> {
  try {
    await fs.access(path('net.bridge'))
  } catch {
    return { changes: [], missing: true }
  }
  const keys: BridgeNetfilterKey[] = [
    ...(families.ipv4 ? ['net.bridge.bridge-nf-call-iptables' as const] : []),
    ...(families.ipv6 ? ['net.bridge.bridge-nf-call-ip6tables' as const] : [])
  ]
  return { changes: await ensureOn(keys), missing: false }
}

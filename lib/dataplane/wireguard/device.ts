// The WireGuard device in the kernel: create or adopt it (kernel module or userspace
// wireguard-go), read it back as an ObservedWireguard, apply a WireguardPlan to it, delete it.
// Links and addresses go through rtnl (netlink); peers, key and port through `wg` — one `wg`
// process per apply for all peer changes (see conf.ts for the rule), none when nothing changed.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseIp } from '../../ipam/cidr'
import type { ObservedWireguard, WireguardPlan } from '../../mesh/types'
import { isCommandError, run } from '../exec'
import { isRtnlError, type Address, type Link, type Rtnl } from '../rtnl'
import { DumpReader, renderInvocations, type WgInvocation } from './conf'
import { findWireguardGo, reapWireguardGo, socketAnswers, startWireguardGo, waitForSocket } from './wireguard-go'

export type WireguardMode = 'auto' | 'kernel' | 'userspace'
export type DeviceKind = 'kernel' | 'userspace'

export type DeviceProblem = 'foreign' | 'unresponsive' | 'no-kernel-module' | 'start-failed'

export class WireguardDeviceError extends Error {
  readonly code = 'EWGDEVICE'
  constructor (readonly ifname: string, readonly problem: DeviceProblem, message: string, cause?: unknown) {
    super(`${ifname}: ${message}`, cause === undefined ? undefined : { cause })
    this.name = 'WireguardDeviceError'
  }
}
export const isWireguardDeviceError = (e: unknown): e is WireguardDeviceError => e instanceof WireguardDeviceError

/** How long a freshly started wireguard-go gets to answer on its control socket. */
const SOCKET_WAIT_MS = 5000

/** Kernel WireGuard links have kind "wireguard"; wireguard-go's are plain tun devices. */
const kindOf = (link: Link): DeviceKind | undefined =>
  link.kind === 'wireguard' ? 'kernel' : link.kind === 'tun' ? 'userspace' : undefined

/** Link-local IPv6 addresses are the kernel's (a tun device gets one when up), never podmesh's. */
const isLinkLocal = (a: Address): boolean => a.family === 6 && /^fe[89ab]/i.test(a.ip)

/**
 * Adopts the WireGuard device `ifname` if it exists and answers — never re-creating it, so a
 * restarted daemon does not interrupt traffic — or creates it: a kernel link ('kernel'; 'auto'
 * tries it first), or a wireguard-go daemon that outlives this process ('userspace'; 'auto' falls
 * back to it when the kernel has no WireGuard). Returns which kind the device is.
 */
export async function ensureDevice (ifname: string, opts: { mode: WireguardMode, rtnl: Rtnl }): Promise<DeviceKind> {
  const { mode, rtnl } = opts
  const existing = await rtnl.link(ifname)
  if (existing !== undefined) return await adopt(existing)

  if (mode !== 'userspace') {
    try {
      await rtnl.createWireguard(ifname)
      return 'kernel'
    } catch (e) {
      // EOPNOTSUPP (Node names errno 95 ENOTSUP): no "wireguard" link kind in this kernel.
      const unsupported = isRtnlError(e) && (e.errno === 'EOPNOTSUPP' || e.errno === 'ENOTSUP')
      if (!unsupported) throw e
      if (mode === 'kernel') throw new WireguardDeviceError(ifname, 'no-kernel-module', 'the kernel has no WireGuard support (use mode userspace or auto)', e)
    }
  }
  try {
    await startWireguardGo(ifname)
  } catch (e) {
    throw new WireguardDeviceError(ifname, 'start-failed', 'wireguard-go failed to start (run `wireguard-go -f <ifname>` by hand to see why)', e)
  }
  if (!await waitForSocket(ifname, SOCKET_WAIT_MS)) {
    throw new WireguardDeviceError(ifname, 'unresponsive', `wireguard-go started but its control socket did not answer within ${SOCKET_WAIT_MS} ms`)
  }
  return 'userspace'
}

async function adopt (link: Link): Promise<DeviceKind> {
  const kind = kindOf(link)
  // A kernel WireGuard link is its own proof; a tun device is WireGuard only if wireguard-go answers for it.
  if (kind === 'kernel') return kind
  if (kind === 'userspace') {
    if (await socketAnswers(link.name)) return kind
    throw new WireguardDeviceError(link.name, 'unresponsive', 'a tun device of this name exists but no wireguard-go answers for it')
  }
  throw new WireguardDeviceError(link.name, 'foreign', `a link of this name exists with kind "${link.kind}"; podmesh will not take it over`)
}

/**
 * Deletes the device. A wireguard-go daemon ends by itself once its tun device is gone; one that
 * does not within 2 s is killed by its PID (found through /proc in this network namespace).
 */
export async function deleteDevice (ifname: string, rtnl: Rtnl): Promise<void> {
  const link = await rtnl.link(ifname)
  const pids = await findWireguardGo(ifname)
  if (link !== undefined) {
    if (kindOf(link) === undefined) {
      throw new WireguardDeviceError(ifname, 'foreign', `a link of this name exists with kind "${link.kind}"; podmesh will not delete it`)
    }
    await rtnl.deleteLink(link.index, ifname)
  }
  await reapWireguardGo(pids)
}

/**
 * The device as the kernel holds it, or undefined when there is no such WireGuard device. A
 * caller that observes the same device again and again (the daemon's resync) passes its own
 * `dumps` reader, which parses only the peer lines that changed since its last read.
 */
export async function observeWireguard (ifname: string, rtnl: Rtnl, dumps: DumpReader = new DumpReader()): Promise<ObservedWireguard | undefined> {
  const link = await rtnl.link(ifname)
  if (link === undefined || kindOf(link) === undefined) return undefined
  let dumpText: string
  try {
    dumpText = (await run('wg', ['show', ifname, 'dump'])).stdout
  } catch (e) {
    // `wg` ran and found no such device (wireguard-go gone, its tun lingering): absent.
    if (isCommandError(e) && e.exitCode !== null) return undefined
    throw e
  }
  const dump = dumps.read(dumpText)
  const addresses = (await rtnl.addresses(link.index))
    .filter(a => !isLinkLocal(a))
    .map(a => `${a.ip}/${a.prefixLen}`)
    .sort()
  return { ifname, publicKey: dump.publicKey, listenPort: dump.listenPort, mtu: link.mtu, addresses, peers: dump.peers }
}

function toAddress (index: number, cidr: string): Address {
  const [ip = '', len = ''] = cidr.split('/')
  const { family } = parseIp(ip)
  return { index, family, ip, prefixLen: len === '' ? (family === 4 ? 32 : 128) : Number(len) }
}

/** Runs one `wg` invocation; a config goes through a private temp file, removed afterwards. */
async function runWg (inv: WgInvocation): Promise<void> {
  if (inv.config === undefined) {
    await run('wg', inv.args)
    return
  }
  const dir = await mkdtemp(join(tmpdir(), 'podmesh-wg-'))
  try {
    const file = join(dir, 'peers.conf')
    await writeFile(file, inv.config, { mode: 0o600 })
    await run('wg', [...inv.args, file])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

export interface ApplyWireguardOptions {
  /** The 0600 private key file (keys.ts); `wg` reads it, podmesh never holds the key in argv. */
  privateKeyFile: string
  rtnl: Rtnl
  /** How to create the device when the plan says so; default 'auto'. */
  mode?: WireguardMode
}

export interface WireguardApplyResult {
  /** The device's kind when the plan created (or adopted) it. */
  kind?: DeviceKind
  /** `wg` processes run (0 when the plan had no key, port or peer change). */
  wgInvocations: number
}

/**
 * Carries out a WireguardPlan: creates or adopts the device (plan.create), sets its MTU, runs the
 * `wg` invocation(s) for key, port and all peer changes, adds and removes addresses, and brings
 * the link up. Skips `wg` entirely when the plan changes no key, port or peer.
 */
/**
 * The device half of an apply: create or adopt the device, MTU, addresses, link up — all a
 * route through it needs. Returns the peer half (one `wg` invocation, or none) to run after,
 * possibly alongside the route batch.
 */
export async function prepareWireguard (plan: WireguardPlan, opts: ApplyWireguardOptions): Promise<{ kind?: DeviceKind, configurePeers: () => Promise<number> }> {
  const { rtnl } = opts
  let kind: DeviceKind | undefined
  if (plan.create) kind = await ensureDevice(plan.ifname, { mode: opts.mode ?? 'auto', rtnl })
  const link = await rtnl.link(plan.ifname)
  if (link === undefined) throw new WireguardDeviceError(plan.ifname, 'unresponsive', 'device vanished while being configured')

  if (plan.setMtu !== undefined && plan.setMtu !== link.mtu) await rtnl.setLink(link.index, link.name, { mtu: plan.setMtu })
  for (const a of plan.delAddresses) {
    try {
      await rtnl.delAddress(toAddress(link.index, a))
    } catch (e) {
      // Already gone: the goal is met.
      if (!(isRtnlError(e) && e.errno === 'EADDRNOTAVAIL')) throw e
    }
  }
  for (const a of plan.addAddresses) await rtnl.addAddress(toAddress(link.index, a))
  if (!link.up) await rtnl.setLink(link.index, link.name, { up: true })

  // A device the plan creates has no key yet: configure it whatever the plan says.
  const effective = plan.create && !plan.configure ? { ...plan, configure: true } : plan
  const invocations = renderInvocations(plan.ifname, effective, opts.privateKeyFile)
  return {
    ...(kind !== undefined ? { kind } : {}),
    configurePeers: async () => {
      for (const inv of invocations) await runWg(inv)
      return invocations.length
    }
  }
}

export async function applyWireguard (plan: WireguardPlan, opts: ApplyWireguardOptions): Promise<WireguardApplyResult> {
  const prepared = await prepareWireguard(plan, opts)
  const wgInvocations = await prepared.configurePeers()
  return { ...(prepared.kind !== undefined ? { kind: prepared.kind } : {}), wgInvocations }
}

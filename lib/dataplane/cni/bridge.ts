// The pod bridge: podmeshd creates it with its gateway addresses before any pod is added, so
// the bridge plugin only ever finds a ready bridge (a failed ADD can otherwise leave a bridge
// without its gateway address). Reconciles MTU, addresses and link state; idempotent.

import { containsIp, formatIp, parseCidr, parseIp, type Family } from '../../ipam/cidr'
import type { Address, Link, Rtnl } from '../rtnl'

/** The rtnl calls this module needs (the Rtnl adapter satisfies it). */
export type BridgeRtnl = Pick<Rtnl, 'link' | 'links' | 'createBridge' | 'setLink' | 'addresses' | 'addAddress' | 'delAddress'>

export interface BridgeSpec {
  name: string
  /** Gateway addresses in "ip/len" form (see mesh/cni-config.ts gatewayAddresses). */
  addresses: string[]
  /**
   * The pods' MTU. The bridge gets it, but never more than its smallest port: a pod made while the
   * MTU was lower keeps its interface, and a bridge larger than that pod's veth drops bigger
   * packets toward it without a word, where the bridge's own MTU makes the node answer with ICMP.
   */
  mtu: number
}

export interface BridgeChange {
  created: boolean
  /** Set when the MTU was changed. */
  mtu?: { from: number, to: number }
  addedAddresses: string[]
  removedAddresses: string[]
  broughtUp: boolean
}

export const bridgeUnchanged = (c: BridgeChange): boolean =>
  !c.created && c.mtu === undefined && c.addedAddresses.length === 0 && c.removedAddresses.length === 0 && !c.broughtUp

export class BridgeError extends Error {
  readonly code = 'EBRIDGE'
  constructor (readonly bridge: string, readonly reason: 'not-a-bridge' | 'bad-address' | 'kernel', message: string, options?: { cause?: unknown }) {
    super(`bridge ${bridge}: ${message}`, options)
    this.name = 'BridgeError'
  }
}
export const isBridgeError = (e: unknown): e is BridgeError => e instanceof BridgeError

// Link-local addresses belong to the kernel (IPv6 makes one for every link); never "stale".
const LINK_LOCAL = [parseCidr('fe80::/10'), parseCidr('169.254.0.0/16')]
const isLinkLocal = (family: Family, ip: string): boolean => LINK_LOCAL.some(c => containsIp(c, family, parseIp(ip).addr))

const addressText = (a: Pick<Address, 'ip' | 'prefixLen'>): string => `${a.ip}/${a.prefixLen}`

function parseAddress (bridge: string, text: string): Omit<Address, 'index'> {
  const [ip = '', len = ''] = text.split('/')
  try {
    parseCidr(text, { allowHostBits: true }) // validates the prefix length for the family
    const parsed = parseIp(ip)
    return { family: parsed.family, ip: formatIp(parsed.family, parsed.addr), prefixLen: Number(len) }
  } catch (e) {
    throw new BridgeError(bridge, 'bad-address', `"${text}" is not an "ip/len" address`, { cause: e })
  }
}

async function kernel<T> (bridge: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw new BridgeError(bridge, 'kernel', (e as Error).message, { cause: e })
  }
}

async function createIfMissing (rtnl: BridgeRtnl, spec: BridgeSpec): Promise<{ link: Link, created: boolean }> {
  const existing = await kernel(spec.name, () => rtnl.link(spec.name))
  if (existing !== undefined) {
    if (existing.kind !== 'bridge') {
      throw new BridgeError(spec.name, 'not-a-bridge', `a link of kind "${existing.kind || 'unknown'}" already has this name`)
    }
    return { link: existing, created: false }
  }
  let created = true
  try {
    await rtnl.createBridge(spec.name, spec.mtu)
  } catch (e) {
    // Someone created it between our look and our create: adopt it (checked below).
    if ((e as { errno?: string }).errno !== 'EEXIST') throw new BridgeError(spec.name, 'kernel', (e as Error).message, { cause: e })
    created = false
  }
  const link = await kernel(spec.name, () => rtnl.link(spec.name))
  if (link === undefined) throw new BridgeError(spec.name, 'kernel', 'bridge vanished right after it was created')
  if (link.kind !== 'bridge') throw new BridgeError(spec.name, 'not-a-bridge', `a link of kind "${link.kind || 'unknown'}" already has this name`)
  return { link, created }
}

export async function ensureBridge (rtnl: BridgeRtnl, spec: BridgeSpec): Promise<BridgeChange> {
  const want = spec.addresses.map(a => parseAddress(spec.name, a))
  const { link, created } = await createIfMissing(rtnl, spec)
  const change: BridgeChange = { created, addedAddresses: [], removedAddresses: [], broughtUp: false }

  const ports = created ? [] : (await kernel(spec.name, () => rtnl.links())).filter(l => l.master === link.index)
  const mtu = Math.min(spec.mtu, ...ports.map(p => p.mtu))
  if (link.mtu !== mtu) {
    await kernel(spec.name, () => rtnl.setLink(link.index, spec.name, { mtu }))
    if (!created) change.mtu = { from: link.mtu, to: mtu }
  }

  const have = (await kernel(spec.name, () => rtnl.addresses(link.index))).filter(a => !isLinkLocal(a.family, a.ip))
  const wantText = new Set(want.map(addressText))
  const haveText = new Set(have.map(addressText))
  // Stale first: a new subnet may overlap the old one's connected route.
  for (const a of have.filter(a => !wantText.has(addressText(a)))) {
    await kernel(spec.name, () => rtnl.delAddress(a))
    change.removedAddresses.push(addressText(a))
  }
  for (const a of want.filter(a => !haveText.has(addressText(a)))) {
    await kernel(spec.name, () => rtnl.addAddress({ ...a, index: link.index }))
    change.addedAddresses.push(addressText(a))
  }

  await pinMac(rtnl, spec.name, link)

  if (!link.up) {
    await kernel(spec.name, () => rtnl.setLink(link.index, spec.name, { up: true }))
    change.broughtUp = true
  }
  return change
}

/** Bridges (name and index) whose MAC this process has pinned. */
const pinned = new Set<string>()

/**
 * A bridge whose MAC was never set takes the lowest MAC among its ports, so deleting one pod can
 * change the gateway's MAC under every other pod of the node: their neighbour entries go stale and
 * their traffic is lost until they probe again (seconds, up to half a minute). Setting the MAC
 * it has now, once, makes the kernel keep it (addr_assign_type "set"), whatever ports come and go.
 */
async function pinMac (rtnl: BridgeRtnl, name: string, link: Link): Promise<void> {
  const key = `${name}#${link.index}`
  if (pinned.has(key) || link.mac === undefined) return
  const mac = link.mac
  await kernel(name, () => rtnl.setLink(link.index, name, { mac }))
  pinned.add(key)
}

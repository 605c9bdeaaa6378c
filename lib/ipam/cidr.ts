// CIDR arithmetic for both address families on bigint: parse, format, containment, overlap,
// and the n-th subnet of a range. Pure; every other module takes its prefixes from here.
import { isIPv4, isIPv6 } from 'node:net'

export type Family = 4 | 6

/** A parsed, canonical prefix: `addr` is the network address (host bits zero). */
export interface Cidr {
  readonly family: Family
  readonly addr: bigint
  readonly len: number
}

export class CidrError extends Error {
  readonly code = 'ECIDR'
  constructor (message: string) {
    super(message)
    this.name = 'CidrError'
  }
}
export const isCidrError = (e: unknown): e is CidrError => e instanceof CidrError

export const familyBits = (f: Family): number => (f === 4 ? 32 : 128)

export function parseIp (text: string): { family: Family, addr: bigint } {
  if (isIPv4(text)) {
    const addr = text.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n)
    return { family: 4, addr }
  }
  if (isIPv6(text)) return { family: 6, addr: parseIpv6(text) }
  throw new CidrError(`"${text}" is not an IP address`)
}

function parseIpv6 (text: string): bigint {
  let s = text
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (v4?.[1] !== undefined) {
    const n = parseIp(v4[1]).addr
    s = s.slice(0, -v4[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = s.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === undefined || tail === '' ? [] : tail.split(':')
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0')
  return [...h, ...fill, ...t].reduce((a, x) => (a << 16n) | BigInt(parseInt(x, 16)), 0n)
}

export function formatIp (family: Family, addr: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map(s => String((addr >> s) & 0xffn)).join('.')
  }
  const hextets: number[] = []
  for (let i = 7; i >= 0; i--) hextets.push(Number((addr >> BigInt(i * 16)) & 0xffffn))
  // RFC 5952: compress the longest run (length ≥ 2) of zero hextets, the first on a tie.
  let best = -1; let bestLen = 0
  for (let i = 0; i < 8;) {
    if (hextets[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && hextets[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i }
    i = j
  }
  const hex = hextets.map(h => h.toString(16))
  if (best < 0) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/** Parses "a.b.c.d/n" or "x::/n". Host bits must be zero unless `allowHostBits`. */
export function parseCidr (text: string, opts: { allowHostBits?: boolean } = {}): Cidr {
  if (typeof text !== 'string') throw new CidrError(`CIDR must be a string, got ${typeof text}`)
  const slash = text.indexOf('/')
  if (slash < 0) throw new CidrError(`"${text}" is not a CIDR (missing /prefix-length)`)
  const ipText = text.slice(0, slash)
  const lenText = text.slice(slash + 1)
  const { family, addr } = parseIp(ipText)
  if (!/^\d{1,3}$/.test(lenText)) throw new CidrError(`"${text}" has a malformed prefix length`)
  const len = Number(lenText)
  if (len > familyBits(family)) throw new CidrError(`"${text}" has prefix length ${len} > ${familyBits(family)}`)
  const net = addr & prefixMask(family, len)
  if (net !== addr && opts.allowHostBits !== true) {
    throw new CidrError(`"${text}" has host bits set (did you mean ${formatCidr({ family, addr: net, len })}?)`)
  }
  return { family, addr: net, len }
}

export function formatCidr (c: Cidr): string {
  return `${formatIp(c.family, c.addr)}/${c.len}`
}

export function prefixMask (family: Family, len: number): bigint {
  const bits = BigInt(familyBits(family))
  const all = (1n << bits) - 1n
  return all ^ ((1n << (bits - BigInt(len))) - 1n)
}

export const lastAddr = (c: Cidr): bigint => c.addr | (((1n << BigInt(familyBits(c.family) - c.len)) - 1n))

export function containsCidr (outer: Cidr, inner: Cidr): boolean {
  return outer.family === inner.family && inner.len >= outer.len &&
    (inner.addr & prefixMask(outer.family, outer.len)) === outer.addr
}

export function containsIp (outer: Cidr, family: Family, addr: bigint): boolean {
  return outer.family === family && (addr & prefixMask(family, outer.len)) === outer.addr
}

export function overlaps (a: Cidr, b: Cidr): boolean {
  return containsCidr(a, b) || containsCidr(b, a)
}

/** How many subnets of length `len` the range holds (bigint: IPv6 ranges are huge). */
export function subnetCount (range: Cidr, len: number): bigint {
  if (len < range.len) return 0n
  return 1n << BigInt(len - range.len)
}

/** The `index`-th subnet of length `len` inside `range`. */
export function nthSubnet (range: Cidr, len: number, index: bigint): Cidr {
  const shift = BigInt(familyBits(range.family) - len)
  return { family: range.family, addr: range.addr + (index << shift), len }
}

/** Index of `sub` inside `range` when split into subnets of sub.len. */
export function subnetIndex (range: Cidr, sub: Cidr): bigint {
  return (sub.addr - range.addr) >> BigInt(familyBits(range.family) - sub.len)
}

/** The address at `offset` inside the prefix, as "addr/len" host form (e.g. gateway .1). */
export function hostAddr (c: Cidr, offset: bigint): bigint {
  return c.addr + offset
}

export const cidrEqual = (a: Cidr, b: Cidr): boolean => a.family === b.family && a.addr === b.addr && a.len === b.len

/**
 * Canonical text of a CIDR string ("10.1.0.0/16", "fd00::/48"), or a CidrError. Memoised: every
 * resync canonicalises each peer's allowed IPs from `wg show dump`, the same few thousand texts.
 */
const canonicalMemo = new Map<string, string>()
export function canonicalCidr (text: string): string {
  let c = canonicalMemo.get(text)
  if (c === undefined) {
    c = formatCidr(parseCidr(text))
    if (canonicalMemo.size >= 100_000) canonicalMemo.clear()
    canonicalMemo.set(text, c)
  }
  return c
}

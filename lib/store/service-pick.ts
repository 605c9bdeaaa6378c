// Allocation policy for cluster IPs and NodePorts: which addresses of a service range may be
// handed out, and a free one chosen from a random start (first free at or after it, wrapping), so
// that concurrent adders rarely pick the same one and a full range is found in one pass. Pure
// (random injected); lib/store/services.ts reads what is taken and claims the choice in etcd.
//
// Reserved, as kube-apiserver does: the network address of every range (in IPv6 the
// subnet-router anycast address, RFC 4291), and the last address of an IPv4 range (broadcast).
// The first host address is handed out like any other: podmesh has no `kubernetes` service.
import { type Cidr, type Family, containsIp, formatIp, lastAddr, parseCidr } from '../ipam/cidr'

/** Uniform random integer in [0, n). */
export type RandomBelow = (n: bigint) => bigint

export const randomBelow: RandomBelow = n => {
  // 64 random bits modulo n: the bias is below 2^-40 for every range podmesh accepts.
  const hi = BigInt(Math.floor(Math.random() * 2 ** 32))
  const lo = BigInt(Math.floor(Math.random() * 2 ** 32))
  return ((hi << 32n) | lo) % n
}

/** The addresses of a service range that may be allocated, [first, last]. */
export interface UsableRange {
  cidr: Cidr
  family: Family
  first: bigint
  last: bigint
}

export function usableRange (cidrText: string): UsableRange {
  const cidr = parseCidr(cidrText)
  const last = cidr.family === 4 ? lastAddr(cidr) - 1n : lastAddr(cidr)
  return { cidr, family: cidr.family, first: cidr.addr + 1n, last }
}

export const usableText = (r: UsableRange): string => `${formatIp(r.family, r.first)}-${formatIp(r.family, r.last)}`

/** Why an address of the range's family cannot be allocated from it, or undefined if it can. */
export function outOfRange (r: UsableRange, addr: bigint): string | undefined {
  if (!containsIp(r.cidr, r.family, addr)) return 'outside'
  if (addr === r.cidr.addr) return 'the network address'
  if (addr > r.last) return 'the broadcast address'
  return undefined
}

/** The first free address at or after a random start, wrapping; undefined when all are taken. */
export function pickAddress (r: UsableRange, taken: ReadonlySet<bigint>, random: RandomBelow): bigint | undefined {
  const size = r.last - r.first + 1n
  const start = random(size)
  for (let i = 0n; i < size; i++) {
    const addr = r.first + (start + i) % size
    if (!taken.has(addr)) return addr
  }
  return undefined
}

/** The first free port of [min, max] at or after a random start, wrapping; undefined when all are taken. */
export function pickPort (min: number, max: number, taken: ReadonlySet<number>, random: RandomBelow): number | undefined {
  const size = max - min + 1
  const start = Number(random(BigInt(size)))
  for (let i = 0; i < size; i++) {
    const port = min + (start + i) % size
    if (!taken.has(port)) return port
  }
  return undefined
}

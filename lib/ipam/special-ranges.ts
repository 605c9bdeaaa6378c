// Address ranges with a fixed meaning that can be neither a pod network nor a tunnel endpoint:
// loopback, link-local, multicast, the unspecified address, IPv4 broadcast. One table for the
// config parser (pod ranges) and the endpoint parser (record endpoints). Pure.
import { type Cidr, type Family, containsIp, overlaps, parseCidr } from './cidr'

export type SpecialKind = 'unspecified' | 'loopback' | 'linkLocal' | 'multicast' | 'broadcast'

interface Special { cidr: Cidr, text: string, kind: SpecialKind, why: string }

const special = (text: string, kind: SpecialKind, why: string): Special => ({ cidr: parseCidr(text), text, kind, why })

const SPECIAL: readonly Special[] = [
  // "This network" (RFC 1122): 0.0.0.0/8 is never a destination; 0.0.0.0 means "any".
  special('0.0.0.0/8', 'unspecified', 'unspecified ("this network", RFC 1122)'),
  special('127.0.0.0/8', 'loopback', 'loopback'),
  special('169.254.0.0/16', 'linkLocal', 'link-local; it never leaves a link'),
  special('224.0.0.0/4', 'multicast', 'multicast'),
  special('255.255.255.255/32', 'broadcast', 'the IPv4 limited broadcast address'),
  special('::/128', 'unspecified', 'the unspecified address'),
  special('::1/128', 'loopback', 'loopback'),
  special('fe80::/10', 'linkLocal', 'link-local; it never leaves a link'),
  special('ff00::/8', 'multicast', 'multicast')
]

export interface SpecialMatch { kind: SpecialKind, range: string, why: string }

/** The special range the CIDR overlaps (in either direction), if any. */
export function specialOverlap (c: Cidr): SpecialMatch | undefined {
  const s = SPECIAL.find(s => overlaps(s.cidr, c))
  return s === undefined ? undefined : { kind: s.kind, range: s.text, why: s.why }
}

/** The special range the address lies in, if any. */
export function specialAddress (family: Family, addr: bigint): SpecialMatch | undefined {
  const s = SPECIAL.find(s => containsIp(s.cidr, family, addr))
  return s === undefined ? undefined : { kind: s.kind, range: s.text, why: s.why }
}

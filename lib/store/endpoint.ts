// A node's underlay endpoint, the contract value of a node record's `endpoint`:
// "192.0.2.11:51820" or "[2001:db8::11]:51820". The one parser for podmeshd, podmeshctl and the
// planner. Two strengths: `parseEndpoint` reads any well-formed endpoint (also the kernel's text
// from `wg show`, compared after canonicalising); `parseRecordEndpoint` is what a record may
// carry: canonical text and an address a tunnel can reach. Pure.
import { type Family, formatIp, parseIp } from '../ipam/cidr'
import { specialAddress } from '../ipam/special-ranges'

export interface Endpoint {
  family: Family
  /** Canonical IP text. */
  ip: string
  /** The IP as a number (saves callers a second parse). */
  addr: bigint
  port: number
}

export type EndpointProblem = 'syntax' | 'port' | 'canonical' | 'unusable'

export class EndpointError extends Error {
  readonly code = 'EENDPOINT'
  constructor (readonly text: string, readonly problem: EndpointProblem, message: string) {
    super(`"${text}": ${message}`)
    this.name = 'EndpointError'
  }
}
export const isEndpointError = (e: unknown): e is EndpointError => e instanceof EndpointError

const ENDPOINT_RE = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/

/** Parses "ip:port" or "[ip6]:port" (IPv6 needs brackets, IPv4 must not have them). */
export function parseEndpoint (text: string): Endpoint {
  const m = ENDPOINT_RE.exec(text)
  if (m === null) throw new EndpointError(text, 'syntax', 'not ip:port or [ipv6]:port')
  const ipText = m[1] ?? m[2] ?? ''
  let ip
  try { ip = parseIp(ipText) } catch { throw new EndpointError(text, 'syntax', `malformed IP "${ipText}"`) }
  if (m[1] !== undefined && ip.family !== 6) throw new EndpointError(text, 'syntax', 'brackets are only for IPv6')
  const port = Number(m[3])
  if (port < 1 || port > 65535) throw new EndpointError(text, 'port', `port ${port} is outside 1..65535`)
  return { family: ip.family, ip: formatIp(ip.family, ip.addr), addr: ip.addr, port }
}

/**
 * An endpoint as a node record may carry it: canonical text, and a unicast address another node
 * can reach (not unspecified, loopback, link-local, multicast or broadcast). Whether it lies in a
 * pod range (record parser) or is the reader's own underlay (planner) is checked where that is known.
 */
export function parseRecordEndpoint (text: string): Endpoint {
  const e = parseEndpoint(text)
  const canonical = e.family === 6 ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`
  if (canonical !== text) throw new EndpointError(text, 'canonical', `IP is not in canonical form (${canonical})`)
  const special = specialAddress(e.family, e.addr)
  if (special !== undefined) throw new EndpointError(text, 'unusable', `${special.why} (${special.range}), not a reachable endpoint`)
  return e
}

export function formatEndpoint (e: { ip: string, port: number }): string {
  const { family, addr } = parseIp(e.ip)
  const ip = formatIp(family, addr)
  return family === 6 ? `[${ip}]:${e.port}` : `${ip}:${e.port}`
}

/** Canonical text of an endpoint ('' stays ''), so kernel- and etcd-given forms compare equal. */
export function canonicalEndpoint (text: string): string {
  if (text === '' || text === '(none)') return ''
  return formatEndpoint(parseEndpoint(text))
}

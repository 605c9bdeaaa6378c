// Underlay endpoints as node records carry them: "192.0.2.11:51820" or "[2001:db8::11]:51820".

import { formatIp, parseIp, type Family } from '../ipam/cidr'

export interface Endpoint { family: Family, ip: string, port: number }

export class EndpointError extends Error {
  readonly code = 'EENDPOINT'
  constructor (message: string) { super(message); this.name = 'EndpointError' }
}
export const isEndpointError = (e: unknown): e is EndpointError => e instanceof EndpointError

export function parseEndpoint (text: string): Endpoint {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([0-9.]+):(\d{1,5})$/.exec(text)
  if (m === null) throw new EndpointError(`endpoint "${text}" is not ip:port or [ipv6]:port`)
  const port = Number(m[2])
  if (port < 1 || port > 65535) throw new EndpointError(`endpoint "${text}" has port ${port} outside 1-65535`)
  let parsed
  try { parsed = parseIp(m[1] as string) } catch { throw new EndpointError(`endpoint "${text}" has a malformed IP`) }
  if (parsed.family === 6 && !text.startsWith('[')) throw new EndpointError(`endpoint "${text}": IPv6 needs [brackets]`)
  return { family: parsed.family, ip: formatIp(parsed.family, parsed.addr), port }
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

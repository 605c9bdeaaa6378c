// A service port as `podmeshctl service add --port` takes it: `PORT[:TARGET][/PROTOCOL]`
// (`80:8080/tcp`, `53/udp`, `443`), TCP when no protocol is given. Pure.

import { PROTOCOLS, type Protocol, type ServicePort } from './types'

export class PortSpecError extends Error {
  readonly code = 'EPORTSPEC'
  constructor (message: string) {
    super(message)
    this.name = 'PortSpecError'
  }
}
export const isPortSpecError = (e: unknown): e is PortSpecError => e instanceof PortSpecError

const isProtocol = (p: string): p is Protocol => (PROTOCOLS as readonly string[]).includes(p)

/** A TCP/UDP/SCTP port number, 1–65535, written in decimal. */
export function parsePortNumber (text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new PortSpecError(`${what} "${text}" is not a port number`)
  const n = Number(text)
  if (n < 1 || n > 65535) throw new PortSpecError(`${what} ${n} is out of range (1-65535)`)
  return n
}

export function parsePortSpec (text: string): ServicePort {
  const m = /^([^:/]*)(?::([^/]*))?(?:\/(.*))?$/.exec(text.trim())
  if (m === null) throw new PortSpecError(`port "${text}" is not PORT[:TARGET][/PROTOCOL]`)
  const [, portText = '', targetText, protoText] = m
  const protocol = (protoText ?? 'tcp').toLowerCase()
  if (!isProtocol(protocol)) throw new PortSpecError(`port "${text}": protocol "${protoText ?? ''}" is not tcp, udp or sctp`)
  const port = parsePortNumber(portText, `port "${text}": port`)
  const targetPort = targetText === undefined ? port : parsePortNumber(targetText, `port "${text}": target port`)
  return { protocol, port, targetPort }
}

/** Ports of one service: no two may share a protocol and port. */
export function checkPortSet (ports: readonly ServicePort[]): void {
  if (ports.length === 0) throw new PortSpecError('a service needs at least one --port')
  const seen = new Set<string>()
  for (const p of ports) {
    const k = `${p.port}/${p.protocol}`
    if (seen.has(k)) throw new PortSpecError(`port ${k} is given twice`)
    seen.add(k)
  }
}

// The pod's addresses from the previous plugin's result: those on an interface inside the
// container (the `interface` index points at an entry with a `sandbox`), one per family, IPv4
// first; results before 0.3.0 (`ip4`/`ip6`) name only the container's addresses. Pure.
import { CNI_CODE, CniError } from './cni-error'
import { formatIp, parseIp, type Family } from '../ipam/cidr'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const bad = (msg: string, details = ''): CniError => new CniError(CNI_CODE.invalidNetworkConfig, `prevResult: ${msg}`, details)

/** "10.22.0.5/24" → canonical "10.22.0.5". */
function addressIp (where: string, text: unknown): { family: Family, ip: string } {
  if (typeof text !== 'string') throw bad(`${where} has no address`)
  const slash = text.indexOf('/')
  try {
    const p = parseIp(slash < 0 ? text : text.slice(0, slash))
    return { family: p.family, ip: formatIp(p.family, p.addr) }
  } catch {
    throw bad(`${where}: "${text}" is not an ip/len address`, text)
  }
}

function containerAddresses (prev: Record<string, unknown>): Array<{ family: Family, ip: string }> {
  if (prev.ips === undefined && (prev.ip4 !== undefined || prev.ip6 !== undefined)) {
    return (['ip4', 'ip6'] as const).filter(k => prev[k] !== undefined).map(k => {
      const v = prev[k]
      if (!isObject(v)) throw bad(`${k} must be an object`)
      return addressIp(k, v.ip)
    })
  }
  const interfaces = prev.interfaces ?? []
  const ips = prev.ips ?? []
  if (!Array.isArray(interfaces)) throw bad('interfaces must be a list')
  if (!Array.isArray(ips)) throw bad('ips must be a list')
  const out: Array<{ family: Family, ip: string }> = []
  for (const [i, entry] of ips.entries()) {
    if (!isObject(entry)) throw bad(`ips[${i}] must be an object`)
    const index = entry.interface
    if (typeof index !== 'number') continue // an address of no named interface: not the pod's
    const ifc: unknown = interfaces[index]
    if (!isObject(ifc) || typeof ifc.sandbox !== 'string' || ifc.sandbox === '') continue
    out.push(addressIp(`ips[${i}]`, entry.address))
  }
  return out
}

/** One address per family, IPv4 first; none is an error (the pod could never be an endpoint). */
export function podIps (prev: Record<string, unknown>): string[] {
  const all = containerAddresses(prev)
  const out = ([4, 6] as const).map(f => all.find(a => a.family === f)?.ip).filter((ip): ip is string => ip !== undefined)
  if (out.length === 0) throw bad('no address on an interface inside the container (is podmesh after the IP-allocating plugin in the conflist?)')
  return out
}

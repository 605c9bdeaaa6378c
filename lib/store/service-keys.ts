// The Service layer's keys under the cluster prefix (docs/services.md) — public API like keys.ts:
//   <prefix>services/<name>                the service (ServiceSpec)
//   <prefix>serviceips/<ip>                {"v":1,"service":"<name>"}: a cluster IP is taken
//   <prefix>nodeports/<protocol>-<port>    {"v":1,"service":"<name>"}: a NodePort is taken
//   <prefix>pods/<node>/<container id>     a pod as its node's CNI plugin reported it
// Key builders, the service name rule, and the claim value of serviceips/ and nodeports/. Pure.
import type { Protocol } from '../service/types'

export const servicesPrefix = (prefix: string): string => `${prefix}services/`
export const serviceIpsPrefix = (prefix: string): string => `${prefix}serviceips/`
export const nodePortsPrefix = (prefix: string): string => `${prefix}nodeports/`
export const podsPrefix = (prefix: string): string => `${prefix}pods/`
/** One node's pods, "/"-terminated so that node-a's range never holds node-ab's keys. */
export const nodePodsPrefix = (prefix: string, node: string): string => `${podsPrefix(prefix)}${node}/`

export const serviceKey = (prefix: string, name: string): string => `${servicesPrefix(prefix)}${name}`
/** `ip` must be canonical text (formatIp): one address, one key. */
export const serviceIpKey = (prefix: string, ip: string): string => `${serviceIpsPrefix(prefix)}${ip}`
export const nodePortKey = (prefix: string, protocol: Protocol, port: number): string => `${nodePortsPrefix(prefix)}${protocol}-${port}`

/**
 * Service names are DNS labels as Kubernetes' Service names are (RFC 1035): lower-case letters,
 * digits and '-', starting with a letter, ending alphanumeric, at most 63 characters — the name
 * becomes a key and, one day, a DNS name.
 */
const SERVICE_NAME_RE = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/
export const isServiceName = (name: string): boolean => SERVICE_NAME_RE.test(name)
export const SERVICE_NAME_RULE = "a DNS label: lower-case letters, digits and '-', starting with a letter, ending alphanumeric, at most 63 characters"

export const SERVICE_CLAIM_VERSION = 1

/** The value of a serviceips/ or nodeports/ key: which service holds it. */
export const formatServiceClaim = (service: string): string => JSON.stringify({ v: SERVICE_CLAIM_VERSION, service })

/** The holding service's name, or undefined for a value that is not a well-formed claim. */
export function parseServiceClaim (text: string): string | undefined {
  if (text.length > 1024) return undefined
  try {
    const o = JSON.parse(text) as unknown
    if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined
    const v = o as Record<string, unknown>
    if (v.v !== SERVICE_CLAIM_VERSION || typeof v.service !== 'string' || !isServiceName(v.service)) return undefined
    if (Object.keys(v).some(k => k !== 'v' && k !== 'service')) return undefined
    return v.service
  } catch {
    return undefined
  }
}

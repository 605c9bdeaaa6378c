// The Service layer's keys under the cluster prefix (docs/services.md) — public API like keys.ts:
//   <prefix>services/<name>                the service (ServiceSpec)
//   <prefix>serviceips/<ip>                {"v":1,"service":"<name>"}: a cluster IP is taken
//   <prefix>nodeports/<protocol>-<port>    {"v":1,"service":"<name>"}: a NodePort is taken
//   <prefix>pods/<node>/<container id>     a pod as its node's CNI plugin reported it
// Every builder and parser of these keys, and the claim value of serviceips/ and nodeports/. A
// name that cannot be a key part is refused with a KeyError, never escaped; the name rules are
// lib/service/names.ts's (and keys.ts's for nodes), so writers and readers agree. Pure.
import { CONTAINER_ID_RULE, SERVICE_NAME_RULE, isContainerId, isServiceName } from '../service/names'
import type { Protocol } from '../service/types'
import { KeyError, NODE_NAME_RULE, isNodeName } from './keys'

export const servicesPrefix = (prefix: string): string => `${prefix}services/`
export const serviceIpsPrefix = (prefix: string): string => `${prefix}serviceips/`
export const nodePortsPrefix = (prefix: string): string => `${prefix}nodeports/`
export const podsPrefix = (prefix: string): string => `${prefix}pods/`

export function serviceKey (prefix: string, name: string): string {
  const key = `${servicesPrefix(prefix)}${name}`
  if (!isServiceName(name)) throw new KeyError(key, `"${name}" is not a valid service name (${SERVICE_NAME_RULE})`)
  return key
}

/** The service name of a services/ key. */
export function parseServiceKey (prefix: string, key: string): string {
  const folder = servicesPrefix(prefix)
  if (!key.startsWith(folder)) throw new KeyError(key, `not under ${folder}`)
  const name = key.slice(folder.length)
  if (!isServiceName(name)) throw new KeyError(key, `"${name}" is not a valid service name`)
  return name
}

/** `ip` must be canonical text (formatIp): one address, one key. */
export const serviceIpKey = (prefix: string, ip: string): string => `${serviceIpsPrefix(prefix)}${ip}`
export const nodePortKey = (prefix: string, protocol: Protocol, port: number): string => `${nodePortsPrefix(prefix)}${protocol}-${port}`

/**
 * The folder of one node's pods (what its lease holds and `node remove` deletes), "/"-terminated
 * so that node-a's range never holds node-ab's keys.
 */
export function nodePodsPrefix (prefix: string, node: string): string {
  const folder = `${podsPrefix(prefix)}${node}/`
  if (!isNodeName(node)) throw new KeyError(folder, `"${node}" is not a valid node name (${NODE_NAME_RULE})`)
  return folder
}

export function podKey (prefix: string, node: string, id: string): string {
  const key = `${podsPrefix(prefix)}${node}/${id}`
  if (!isNodeName(node)) throw new KeyError(key, `"${node}" is not a valid node name (${NODE_NAME_RULE})`)
  if (!isContainerId(id)) throw new KeyError(key, `"${id}" is not a valid container ID (${CONTAINER_ID_RULE})`)
  return key
}

/** The node and container ID of a pods/ key. */
export function parsePodKey (prefix: string, key: string): { node: string, id: string } {
  const folder = podsPrefix(prefix)
  if (!key.startsWith(folder)) throw new KeyError(key, `not under ${folder}`)
  const parts = key.slice(folder.length).split('/')
  if (parts.length !== 2) throw new KeyError(key, 'a pod key is pods/<node>/<container id>')
  const [node = '', id = ''] = parts
  if (!isNodeName(node)) throw new KeyError(key, `"${node}" is not a valid node name`)
  if (!isContainerId(id)) throw new KeyError(key, `"${id}" is not a valid container ID`)
  return { node, id }
}

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

// The values of services/<name> and pods/<node>/<id> as etcd holds them: parsing them back
// (untrusted input: any process with write access may have put anything there) into a
// ServiceSpec or PodRecord holding exactly the validated fields, and the canonical JSON a writer
// stores. Field rules are the operator-facing ones (selector.ts, port-spec.ts, names.ts, the
// interface-name rule), applied again here: the reader never trusts that a writer used them.
// Unknown extra fields are ignored, so a newer writer's additions do not hide a service. Pure.

import { type Family, formatIp, parseIp } from '../ipam/cidr'
import { specialAddress } from '../ipam/special-ranges'
import { INTERFACE_NAME_RULE, isInterfaceName } from '../config/interface-name'
import { NODE_NAME_RULE, isNodeName } from '../store/keys'
import { CONTAINER_ID_RULE, SERVICE_NAME_RULE, isContainerId, isServiceName } from './names'
import { checkPortSet, isPortSpecError, parsePortNumber } from './port-spec'
import { validLabelKey, validLabelValue } from './selector'
import {
  PROTOCOLS, type ExternalTrafficPolicy, type PodRecord, type Protocol, type ServicePort, type ServiceSpec,
  type ServiceType, type SessionAffinity
} from './types'

/** A service value larger than this is not even parsed (a service with the most ports and labels allowed stays far below). */
export const MAX_SERVICE_VALUE_BYTES = 64 * 1024
/** A pod value larger than this is not even parsed. */
export const MAX_POD_VALUE_BYTES = 16 * 1024
/** Ports of one service. */
export const MAX_SERVICE_PORTS = 256
/** Pairs in a selector, labels on a pod. */
export const MAX_LABELS = 64
/** Characters of a pod's namespace or name (a DNS subdomain's limit). */
export const MAX_POD_NAME = 253
/** ClientIP affinity: the longest a client may stay on its endpoint (a day, as in Kubernetes). */
export const MAX_AFFINITY_SECONDS = 86400

const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort']
const AFFINITIES: readonly SessionAffinity[] = ['None', 'ClientIP']
const TRAFFIC_POLICIES: readonly ExternalTrafficPolicy[] = ['Cluster', 'Local']

export class ServiceValueError extends Error {
  readonly code = 'ESERVICEVALUE'
  /** The etcd key whose value was refused. */
  readonly key: string
  /** The field at fault, as a path (`ports[1].nodePort`, `labels`); '' for the value as a whole. */
  readonly field: string
  constructor (key: string, field: string, message: string, options?: { cause?: unknown }) {
    super(`${key}: ${message}`, options)
    this.name = 'ServiceValueError'
    this.key = key
    this.field = field
  }
}
export const isServiceValueError = (e: unknown): e is ServiceValueError => e instanceof ServiceValueError

type Fail = (field: string, message: string, cause?: unknown) => never
const failOf = (key: string): Fail => (field, message, cause) => {
  throw new ServiceValueError(key, field, message, cause === undefined ? undefined : { cause })
}

/**
 * A value for a message, JSON-like and cut short. Never JSON.stringify of the whole value: a
 * hostile value may be megabytes of string, or nested deep enough (a few KiB of "[") to overflow
 * the stack, which would turn one bad value into a crash of its reader.
 */
function brief (v: unknown, depth: number): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) : v)
  if (typeof v !== 'object' || v === null) return String(v)
  if (depth >= 2) return Array.isArray(v) ? '[...]' : '{...}'
  if (Array.isArray(v)) return `[${v.slice(0, 4).map(x => brief(x, depth + 1)).join(',')}${v.length > 4 ? ',...' : ''}]`
  const o = v as Record<string, unknown>
  const keys = Object.keys(o)
  return `{${keys.slice(0, 4).map(k => `${brief(k, 2)}:${brief(o[k], depth + 1)}`).join(',')}${keys.length > 4 ? ',...' : ''}}`
}
function shown (v: unknown): string {
  const s = v === undefined ? 'nothing' : brief(v, 0)
  return s.length > 40 ? `${s.slice(0, 37)}...` : s
}

function jsonObject (text: string, max: number, fail: Fail): Record<string, unknown> {
  const bytes = Buffer.byteLength(text)
  if (bytes > max) fail('', `value is ${bytes} bytes (limit ${max})`)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (e) {
    fail('', `value is not JSON: ${(e as Error).message}`, e)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('', `value must be a JSON object, got ${shown(parsed)}`)
  return parsed as Record<string, unknown>
}

function object (v: unknown, field: string, fail: Fail): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(field, `${field} must be a JSON object, got ${shown(v)}`)
  return v as Record<string, unknown>
}

function oneOf<T extends string> (v: unknown, field: string, allowed: readonly T[], fail: Fail): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) fail(field, `${field} ${shown(v)} is not ${allowed.join(' or ')}`)
  return v as T
}

function portNumber (v: unknown, field: string, fail: Fail): number {
  if (typeof v !== 'number') fail(field, `${field} must be a number, got ${shown(v)}`)
  try {
    // The operators' rule, on the number's decimal text: 80.5, 1e21, -0 and Infinity all fail it.
    return parsePortNumber(String(v), field)
  } catch (e) {
    if (isPortSpecError(e)) fail(field, e.message, e)
    throw e
  }
}

/** Addresses, canonical (as formatIp writes them), none special, at most one per family. */
function addresses (v: unknown, field: string, max: number, fail: Fail): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > max) fail(field, `${field} must be an array of 1-${max} IP addresses, got ${shown(v)}`)
  const seen = new Set<Family>()
  return (v as unknown[]).map((ip, i) => {
    const at = `${field}[${i}]`
    if (typeof ip !== 'string' || ip.length > 45) fail(at, `${at} ${shown(ip)} is not an IP address`)
    let parsed: { family: Family, addr: bigint } | undefined
    try { parsed = parseIp(ip as string) } catch (e) { fail(at, `${at} ${shown(ip)} is not an IP address`, e) }
    const { family, addr } = parsed as { family: Family, addr: bigint }
    const canonical = formatIp(family, addr)
    if (canonical !== ip) fail(at, `${at} "${ip as string}" is not canonical (expected "${canonical}")`)
    const special = specialAddress(family, addr)
    if (special !== undefined) fail(at, `${at} ${canonical} is ${special.why}`)
    if (seen.has(family)) fail(at, `${at} ${canonical}: a second IPv${family} address (at most one per family)`)
    seen.add(family)
    return canonical
  })
}

/** A label map (a pod's labels, a service's selector): every key and value valid, own properties only. */
function labelMap (v: unknown, field: string, fail: Fail): Record<string, string> {
  const o = object(v, field, fail)
  const keys = Object.keys(o)
  if (keys.length > MAX_LABELS) fail(field, `${field} has ${keys.length} pairs (limit ${MAX_LABELS})`)
  const out: Array<[string, string]> = []
  for (const k of keys) {
    // "__proto__" and friends fail the key rule (it starts alphanumeric), so they never reach an object.
    if (!validLabelKey(k)) fail(field, `${field}: ${shown(k)} is not a valid label key`)
    const value = o[k]
    if (typeof value !== 'string' || !validLabelValue(value)) fail(field, `${field}.${k}: ${shown(value)} is not a valid label value`)
    out.push([k, value as string])
  }
  return Object.fromEntries(out)
}

function servicePorts (v: unknown, type: ServiceType, fail: Fail): ServicePort[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_SERVICE_PORTS) fail('ports', `ports must be an array of 1-${MAX_SERVICE_PORTS} ports, got ${shown(v)}`)
  const nodePorts = new Set<string>()
  const ports = (v as unknown[]).map((raw, i): ServicePort => {
    const at = `ports[${i}]`
    const p = object(raw, at, fail)
    const protocol: Protocol = oneOf(p.protocol, `${at}.protocol`, PROTOCOLS, fail)
    const port: ServicePort = { protocol, port: portNumber(p.port, `${at}.port`, fail), targetPort: portNumber(p.targetPort, `${at}.targetPort`, fail) }
    if (type === 'NodePort') {
      if (p.nodePort === undefined) fail(`${at}.nodePort`, `${at}.nodePort is missing: every port of a NodePort service has one`)
      port.nodePort = portNumber(p.nodePort, `${at}.nodePort`, fail)
      const k = `${port.nodePort}/${protocol}`
      if (nodePorts.has(k)) fail(`${at}.nodePort`, `${at}.nodePort ${k} is given twice`)
      nodePorts.add(k)
    } else if (p.nodePort !== undefined) {
      fail(`${at}.nodePort`, `${at}.nodePort is set on a ${type} service (only NodePort services have node ports)`)
    }
    return port
  })
  try {
    checkPortSet(ports)
  } catch (e) {
    if (isPortSpecError(e)) fail('ports', `ports: ${e.message}`, e)
    throw e
  }
  return ports
}

/** The name a key ends with must be the name the value carries, and both must be valid. */
function sameName (v: unknown, field: string, expected: string, valid: (s: string) => boolean, rule: string, fail: Fail): string {
  if (typeof v !== 'string' || !valid(v)) fail(field, `${field} ${shown(v)} is not ${rule}`)
  if (v !== expected) fail(field, `${field} "${v as string}" does not match the key's "${expected}"`)
  return v as string
}

/** services/<name>: `name` is the key's last part. */
export function parseServiceValue (key: string, name: string, text: string): ServiceSpec {
  const fail = failOf(key)
  const o = jsonObject(text, MAX_SERVICE_VALUE_BYTES, fail)
  if (o.v !== 1) fail('v', `unsupported value version ${shown(o.v)} (expected 1)`)
  const spec: ServiceSpec = {
    v: 1,
    name: sameName(o.name, 'name', name, isServiceName, SERVICE_NAME_RULE, fail),
    type: oneOf(o.type, 'type', SERVICE_TYPES, fail),
    clusterIPs: addresses(o.clusterIPs, 'clusterIPs', 2, fail),
    ports: [],
    selector: {},
    sessionAffinity: 'None',
    externalTrafficPolicy: 'Cluster'
  }
  spec.ports = servicePorts(o.ports, spec.type, fail)
  spec.selector = labelMap(o.selector, 'selector', fail)
  spec.sessionAffinity = oneOf(o.sessionAffinity, 'sessionAffinity', AFFINITIES, fail)
  if (o.affinityTimeoutSeconds !== undefined) {
    const s = o.affinityTimeoutSeconds
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 1 || s > MAX_AFFINITY_SECONDS) {
      fail('affinityTimeoutSeconds', `affinityTimeoutSeconds ${shown(s)} must be an integer in 1..${MAX_AFFINITY_SECONDS}`)
    }
    spec.affinityTimeoutSeconds = s as number
  }
  spec.externalTrafficPolicy = oneOf(o.externalTrafficPolicy, 'externalTrafficPolicy', TRAFFIC_POLICIES, fail)
  return spec
}

function podName (v: unknown, field: string, fail: Fail): string {
  // Printable ASCII without spaces: it is shown in podmeshctl's tables and in logs.
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_POD_NAME || !/^[\x21-\x7e]+$/.test(v)) {
    fail(field, `${field} ${shown(v)} must be 1-${MAX_POD_NAME} printable characters without spaces`)
  }
  return v as string
}

/** pods/<node>/<id>: `node` and `id` are the key's last two parts. */
export function parsePodValue (key: string, node: string, id: string, text: string): PodRecord {
  const fail = failOf(key)
  const o = jsonObject(text, MAX_POD_VALUE_BYTES, fail)
  if (o.v !== 1) fail('v', `unsupported value version ${shown(o.v)} (expected 1)`)
  if (typeof o.ifname !== 'string' || !isInterfaceName(o.ifname)) fail('ifname', `ifname ${shown(o.ifname)} is not an interface name (${INTERFACE_NAME_RULE})`)
  const rec: PodRecord = {
    v: 1,
    id: sameName(o.id, 'id', id, isContainerId, `a container ID (${CONTAINER_ID_RULE})`, fail),
    node: sameName(o.node, 'node', node, isNodeName, `a node name (${NODE_NAME_RULE})`, fail),
    ifname: o.ifname as string,
    ips: addresses(o.ips, 'ips', 2, fail),
    labels: {}
  }
  if (o.namespace !== undefined) rec.namespace = podName(o.namespace, 'namespace', fail)
  if (o.name !== undefined) rec.name = podName(o.name, 'name', fail)
  rec.labels = o.labels === undefined ? {} : labelMap(o.labels, 'labels', fail)
  return rec
}

const sortedMap = (m: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.keys(m).sort().map(k => [k, m[k] as string]))

/**
 * The JSON a writer stores at services/<name>: fields in a fixed order, selector keys sorted.
 * The text is parsed back before it is returned: what a writer stores is what every reader
 * accepts (a ServiceValueError names the field otherwise).
 */
export function serviceValueText (spec: ServiceSpec): string {
  const value = {
    v: 1,
    name: spec.name,
    type: spec.type,
    clusterIPs: [...spec.clusterIPs],
    ports: spec.ports.map(p => ({ protocol: p.protocol, port: p.port, targetPort: p.targetPort, ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}) })),
    selector: sortedMap(spec.selector),
    sessionAffinity: spec.sessionAffinity,
    ...(spec.affinityTimeoutSeconds !== undefined ? { affinityTimeoutSeconds: spec.affinityTimeoutSeconds } : {}),
    externalTrafficPolicy: spec.externalTrafficPolicy
  }
  const text = JSON.stringify(value)
  parseServiceValue(`services/${spec.name}`, spec.name, text)
  return text
}

/** The JSON a node stores at pods/<node>/<id>: fields in a fixed order, labels sorted; checked like serviceValueText. */
export function podValueText (rec: PodRecord): string {
  const value = {
    v: 1,
    id: rec.id,
    node: rec.node,
    ifname: rec.ifname,
    ips: [...rec.ips],
    ...(rec.namespace !== undefined ? { namespace: rec.namespace } : {}),
    ...(rec.name !== undefined ? { name: rec.name } : {}),
    labels: sortedMap(rec.labels)
  }
  const text = JSON.stringify(value)
  parsePodValue(`pods/${rec.node}/${rec.id}`, rec.node, rec.id, text)
  return text
}

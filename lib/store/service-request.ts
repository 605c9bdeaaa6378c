// A service as the store takes it (AddServiceRequest) and writes it: the request checked and
// normalised before any key is read, the canonical JSON of services/<name>, and a minimal read
// of a stored one (version and name; the full validator of stored values is
// lib/service/service-value.ts once it lands). Pure.
import { parseIp, formatIp, type Family } from '../ipam/cidr'
import { SERVICE_NAME_RULE, isServiceName } from '../service/names'
import { checkPortSet, isPortSpecError } from '../service/port-spec'
import { validLabelKey, validLabelValue } from '../service/selector'
import {
  type ExternalTrafficPolicy, PROTOCOLS, type Selector, type ServicePort, type ServiceSpec, type ServiceType,
  type SessionAffinity
} from '../service/types'
import { ServiceStoreError } from './service-store-error'

export interface AddServiceRequest {
  name: string
  /** Default ClusterIP. */
  type?: ServiceType
  /** A port's `nodePort` asks for that NodePort (NodePort services only); absent: one is chosen. */
  ports: readonly ServicePort[]
  selector: Selector
  /** Default None. */
  sessionAffinity?: SessionAffinity
  /** ClientIP only; 1–86400 seconds (Kubernetes' bounds). */
  affinityTimeoutSeconds?: number
  /** Default Cluster; Local only for NodePort services. */
  externalTrafficPolicy?: ExternalTrafficPolicy
  /** At most one per family; absent families get a chosen address. */
  clusterIPs?: readonly string[]
}

/** A checked request: canonical IPs by family, ports copied. */
export interface CheckedRequest {
  name: string
  type: ServiceType
  ports: ServicePort[]
  selector: Record<string, string>
  sessionAffinity: SessionAffinity
  affinityTimeoutSeconds?: number
  externalTrafficPolicy: ExternalTrafficPolicy
  clusterIPs: Map<Family, { text: string, addr: bigint }>
}

const TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort']
const AFFINITIES: readonly SessionAffinity[] = ['None', 'ClientIP']
const POLICIES: readonly ExternalTrafficPolicy[] = ['Cluster', 'Local']
const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535

export function checkServiceRequest (req: AddServiceRequest): CheckedRequest {
  const name = req.name
  const invalid = (message: string): ServiceStoreError => new ServiceStoreError(name, 'invalid', `service "${name}": ${message}`)
  if (!isServiceName(name)) throw new ServiceStoreError(name, 'invalid', `"${name}" is not a valid service name (${SERVICE_NAME_RULE})`)
  const type = req.type ?? 'ClusterIP'
  if (!TYPES.includes(type)) throw invalid(`type "${String(type)}" is not ClusterIP or NodePort`)
  const sessionAffinity = req.sessionAffinity ?? 'None'
  if (!AFFINITIES.includes(sessionAffinity)) throw invalid(`session affinity "${String(sessionAffinity)}" is not None or ClientIP`)
  const externalTrafficPolicy = req.externalTrafficPolicy ?? 'Cluster'
  if (!POLICIES.includes(externalTrafficPolicy)) throw invalid(`external traffic policy "${String(externalTrafficPolicy)}" is not Cluster or Local`)
  if (externalTrafficPolicy === 'Local' && type !== 'NodePort') throw invalid('external traffic policy Local applies to NodePort services only')
  const timeout = req.affinityTimeoutSeconds
  if (timeout !== undefined) {
    if (sessionAffinity !== 'ClientIP') throw invalid('an affinity timeout needs session affinity ClientIP')
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400) throw invalid(`affinity timeout ${timeout} is outside 1..86400 seconds`)
  }
  const ports: ServicePort[] = []
  const nodePorts = new Set<string>()
  for (const p of req.ports) {
    if (!PROTOCOLS.includes(p.protocol)) throw invalid(`protocol "${String(p.protocol)}" is not tcp, udp or sctp`)
    if (!isPort(p.port)) throw invalid(`port ${String(p.port)} is out of range (1-65535)`)
    if (!isPort(p.targetPort)) throw invalid(`target port ${String(p.targetPort)} is out of range (1-65535)`)
    const out: ServicePort = { protocol: p.protocol, port: p.port, targetPort: p.targetPort }
    if (p.nodePort !== undefined) {
      if (type !== 'NodePort') throw invalid(`node port ${p.nodePort} given for a ${type} service (only NodePort services have node ports)`)
      if (!isPort(p.nodePort)) throw invalid(`node port ${String(p.nodePort)} is out of range (1-65535)`)
      const k = `${p.nodePort}/${p.protocol}`
      if (nodePorts.has(k)) throw invalid(`node port ${k} is given twice`)
      nodePorts.add(k)
      out.nodePort = p.nodePort
    }
    ports.push(out)
  }
  try {
    checkPortSet(ports)
  } catch (e) {
    if (isPortSpecError(e)) throw new ServiceStoreError(name, 'invalid', `service "${name}": ${e.message}`, { cause: e })
    throw e
  }
  const selector: Record<string, string> = {}
  for (const k of Object.keys(req.selector).sort()) {
    const v = req.selector[k] as string
    if (!validLabelKey(k)) throw invalid(`selector key "${k}" is not a valid label key`)
    if (typeof v !== 'string' || !validLabelValue(v)) throw invalid(`selector value "${String(v)}" of ${k} is not a valid label value`)
    selector[k] = v
  }
  const clusterIPs = new Map<Family, { text: string, addr: bigint }>()
  for (const text of req.clusterIPs ?? []) {
    let ip: { family: Family, addr: bigint }
    try { ip = parseIp(text) } catch { throw invalid(`cluster IP "${text}" is not an IP address`) }
    if (clusterIPs.has(ip.family)) throw invalid(`two IPv${ip.family} cluster IPs; give at most one per family`)
    clusterIPs.set(ip.family, { text: formatIp(ip.family, ip.addr), addr: ip.addr })
  }
  const out: CheckedRequest = { name, type, ports, selector, sessionAffinity, externalTrafficPolicy, clusterIPs }
  if (timeout !== undefined) out.affinityTimeoutSeconds = timeout
  return out
}

/** services/<name> as written: fields in one order, selector keys sorted, so equal services are equal bytes. */
export function formatServiceValue (s: ServiceSpec): string {
  return JSON.stringify({
    v: 1,
    name: s.name,
    type: s.type,
    clusterIPs: s.clusterIPs,
    ports: s.ports.map(p => ({ protocol: p.protocol, port: p.port, targetPort: p.targetPort, ...(p.nodePort !== undefined ? { nodePort: p.nodePort } : {}) })),
    selector: Object.fromEntries(Object.keys(s.selector).sort().map(k => [k, s.selector[k]])),
    sessionAffinity: s.sessionAffinity,
    ...(s.affinityTimeoutSeconds !== undefined ? { affinityTimeoutSeconds: s.affinityTimeoutSeconds } : {}),
    externalTrafficPolicy: s.externalTrafficPolicy
  })
}

/**
 * A stored service, checked only for what podmeshctl needs to show it: version, the key's name,
 * and the shapes of its lists. Throws ServiceStoreError 'bad-value'.
 */
export function readServiceValue (name: string, key: string, text: string): ServiceSpec {
  const bad = (why: string): ServiceStoreError => new ServiceStoreError(name, 'bad-value', `${key}: ${why}`)
  if (text.length > 64 * 1024) throw bad(`value is ${text.length} bytes`)
  let o: unknown
  try { o = JSON.parse(text) } catch (e) { throw bad(`not JSON: ${(e as Error).message}`) }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad('not an object')
  const v = o as Record<string, unknown>
  if (v.v !== 1) throw bad(`unsupported version ${JSON.stringify(v.v)}`)
  if (v.name !== name) throw bad(`names ${JSON.stringify(v.name)}, not the key's "${name}"`)
  if (!Array.isArray(v.clusterIPs) || !v.clusterIPs.every(ip => typeof ip === 'string')) throw bad('clusterIPs is not a list of strings')
  if (!Array.isArray(v.ports) || !v.ports.every(p => typeof p === 'object' && p !== null && isPort((p as ServicePort).port) &&
      PROTOCOLS.includes((p as ServicePort).protocol))) throw bad('ports is not a list of ports')
  if (typeof v.selector !== 'object' || v.selector === null || Array.isArray(v.selector)) throw bad('selector is not an object')
  if (typeof v.type !== 'string') throw bad('type is not a string')
  return v as unknown as ServiceSpec
}

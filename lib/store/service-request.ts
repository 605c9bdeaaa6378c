// A service as the store takes it (AddServiceRequest): the request checked and normalised before
// any key is read, by the rules every reader applies to services/<name>
// (lib/service/service-value.ts), so that what addService writes is always readable. Pure.
import { parseIp, formatIp, type Family } from '../ipam/cidr'
import { SERVICE_NAME_RULE, isServiceName } from '../service/names'
import { checkPortSet, isPortSpecError } from '../service/port-spec'
import { validLabelKey, validLabelValue } from '../service/selector'
import { MAX_AFFINITY_SECONDS, MAX_LABELS, MAX_SERVICE_PORTS } from '../service/service-value'
import {
  type ExternalTrafficPolicy, PROTOCOLS, type Selector, type ServicePort, type ServiceType,
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
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_AFFINITY_SECONDS) throw invalid(`affinity timeout ${timeout} is outside 1..${MAX_AFFINITY_SECONDS} seconds`)
  }
  if (req.ports.length > MAX_SERVICE_PORTS) throw invalid(`${req.ports.length} ports (at most ${MAX_SERVICE_PORTS})`)
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
  const selectorKeys = Object.keys(req.selector)
  if (selectorKeys.length > MAX_LABELS) throw invalid(`a selector of ${selectorKeys.length} pairs (at most ${MAX_LABELS})`)
  for (const k of selectorKeys.sort()) {
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

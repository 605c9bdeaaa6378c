// `podmeshctl service add NAME --port … --selector …`: the flags turned into a service request
// (everything that can be judged without etcd; a ConfigError naming the flag is bad usage, exit
// 2), then the store allocates and writes it (a ServiceStoreError is a refusal, exit 1).
import { ConfigError } from '../config/config-error'
import { parsePortNumber, parsePortSpec, isPortSpecError } from '../service/port-spec'
import { isSelectorError, parseSelector } from '../service/selector'
import type { ExternalTrafficPolicy, ServicePort, ServiceType, SessionAffinity } from '../service/types'
import type { StoreClient } from '../store/client'
import { SERVICE_NAME_RULE, isServiceName } from '../service/names'
import { type AddServiceRequest, addService, isServiceStoreError } from '../store/services'
import { checkServiceRequest } from '../store/service-request'
import { type OutputFormat, formatJson } from './output'
import { serviceTable } from './service-list'

export const serviceAddOptions = {
  port: { type: 'string', multiple: true },
  selector: { type: 'string' },
  type: { type: 'string' },
  'node-port': { type: 'string', multiple: true },
  'session-affinity': { type: 'string' },
  'session-affinity-timeout': { type: 'string' },
  'external-traffic-policy': { type: 'string' },
  'cluster-ip': { type: 'string', multiple: true }
} as const

export const serviceAddHelp = `podmeshctl service add NAME [flags]   add a service; prints it with its cluster IPs and node ports
  --port PORT[:TARGET][/PROTO] a port (tcp by default; udp, sctp); repeat for more (required)
  --selector k=v[,k=v…]     the pods behind it: every pair must match (required)
  --type ClusterIP|NodePort (default ClusterIP)
  --node-port N             NodePort only: the node port of the first --port; repeat for the
                            next ports in order; ports without one get a free one from the range
  --session-affinity None|ClientIP  (default None)
  --session-affinity-timeout S      ClientIP only: seconds a client sticks (default 10800)
  --external-traffic-policy Cluster|Local  NodePort only (default Cluster)
  --cluster-ip IP           ask for this cluster IP; once per family (default: a free one)
`

type Values = Readonly<Record<string, unknown>>

const usage = (flag: string, message: string, cause?: unknown): ConfigError =>
  new ConfigError(flag, 'flag', message, cause !== undefined ? { cause } : undefined)

const list = (v: unknown): string[] => Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []

/** One of `choices`, matched without regard to case, as its canonical spelling. */
function choice<T extends string> (flag: string, v: unknown, choices: readonly T[]): T | undefined {
  if (v === undefined) return undefined
  const found = choices.find(c => c.toLowerCase() === String(v).toLowerCase())
  if (found === undefined) throw usage(flag, `"${String(v)}" is not ${choices.join(' or ')}`)
  return found
}

/** The request from the command's name and flags; throws ConfigError (usage) for what is wrong on its face. */
export function serviceAddRequest (name: string | undefined, values: Values): AddServiceRequest {
  if (name === undefined) throw usage('service add', 'usage: podmeshctl service add NAME --port PORT[:TARGET][/PROTO] --selector k=v')
  if (!isServiceName(name)) throw usage('service add', `"${name}" is not a valid service name (${SERVICE_NAME_RULE})`)
  const portTexts = list(values.port)
  if (portTexts.length === 0) throw usage('--port', 'a service needs at least one --port PORT[:TARGET][/PROTO]')
  let ports: ServicePort[]
  try {
    ports = portTexts.map(parsePortSpec)
  } catch (e) {
    if (isPortSpecError(e)) throw usage('--port', e.message, e)
    throw e
  }
  if (typeof values.selector !== 'string') throw usage('--selector', 'a service needs --selector key=value[,key=value…]')
  let selector
  try {
    selector = parseSelector(values.selector)
  } catch (e) {
    if (isSelectorError(e)) throw usage('--selector', e.message, e)
    throw e
  }
  const type: ServiceType = choice('--type', values.type, ['ClusterIP', 'NodePort'] as const) ?? 'ClusterIP'
  const nodePorts = list(values['node-port'])
  if (nodePorts.length > 0 && type !== 'NodePort') throw usage('--node-port', `only NodePort services have node ports (this one is ${type}; add --type NodePort)`)
  if (nodePorts.length > ports.length) throw usage('--node-port', `${nodePorts.length} node ports for ${ports.length} port(s): one per --port at most, in order`)
  nodePorts.forEach((text, i) => {
    try {
      (ports[i] as ServicePort).nodePort = parsePortNumber(text, 'node port')
    } catch (e) {
      if (isPortSpecError(e)) throw usage('--node-port', e.message, e)
      throw e
    }
  })
  const policy: ExternalTrafficPolicy | undefined = choice('--external-traffic-policy', values['external-traffic-policy'], ['Cluster', 'Local'] as const)
  if (policy === 'Local' && type !== 'NodePort') throw usage('--external-traffic-policy', 'Local applies to NodePort services only (add --type NodePort)')
  const affinity: SessionAffinity | undefined = choice('--session-affinity', values['session-affinity'], ['None', 'ClientIP'] as const)
  const req: AddServiceRequest = { name, type, ports, selector }
  if (policy !== undefined) req.externalTrafficPolicy = policy
  if (affinity !== undefined) req.sessionAffinity = affinity
  const timeout = values['session-affinity-timeout']
  if (timeout !== undefined) {
    if (affinity !== 'ClientIP') throw usage('--session-affinity-timeout', 'needs --session-affinity ClientIP')
    if (typeof timeout !== 'string' || !/^\d{1,5}$/.test(timeout) || Number(timeout) < 1 || Number(timeout) > 86400) {
      throw usage('--session-affinity-timeout', `"${String(timeout)}" is not a number of seconds in 1..86400`)
    }
    req.affinityTimeoutSeconds = Number(timeout)
  }
  const ips = list(values['cluster-ip'])
  if (ips.length > 0) req.clusterIPs = ips
  // The store's own checks, here too, so that all that is wrong on its face is usage (exit 2).
  try {
    checkServiceRequest(req)
  } catch (e) {
    if (isServiceStoreError(e)) throw usage(ips.length > 0 && /cluster IP/.test(e.message) ? '--cluster-ip' : 'service add', e.message, e)
    throw e
  }
  return req
}

export async function runServiceAdd (client: StoreClient, prefix: string, request: AddServiceRequest, format: OutputFormat): Promise<string> {
  const spec = await addService(client, prefix, request)
  return format === 'json' ? formatJson(spec) : serviceTable([spec])
}

// `podmeshctl service list`: every service as a table (NAME TYPE CLUSTER-IPS PORTS SELECTOR) or
// JSON; a stored service that cannot be read is listed as skipped, with why. PORTS shows each
// port as --port takes it, PORT:TARGET/PROTO, with @NODEPORT for a NodePort service.
import { selectorText } from '../service/selector'
import type { ServicePort, ServiceSpec } from '../service/types'
import type { StoreClient } from '../store/client'
import { listServices } from '../store/service-read'
import { type OutputFormat, formatJson, formatTable } from './output'

export const serviceListHelp = 'podmeshctl service list   every service: name, type, cluster IPs, ports, selector\n'

export const portText = (p: ServicePort): string => `${p.port}:${p.targetPort}/${p.protocol}${p.nodePort !== undefined ? `@${p.nodePort}` : ''}`

export function serviceTable (services: readonly ServiceSpec[]): string {
  return formatTable([
    ['NAME', 'TYPE', 'CLUSTER-IPS', 'PORTS', 'SELECTOR'],
    ...services.map(s => [s.name, s.type, s.clusterIPs.join(',') || '-', s.ports.map(portText).join(','), selectorText(s.selector) || '-'])
  ])
}

export async function runServiceList (client: StoreClient, prefix: string, format: OutputFormat): Promise<string> {
  const skipped: Array<{ key: string, reason: string }> = []
  // A ServiceValueError's message leads with its key; the reason is what follows.
  const services = await listServices(client, prefix, (key, e) => skipped.push({ key, reason: e.message.startsWith(`${key}: `) ? e.message.slice(key.length + 2) : e.message }))
  if (format === 'json') return formatJson({ services, skipped })
  return serviceTable(services) + skipped.map(s => `!! skipped ${s.key}: ${s.reason}\n`).join('')
}

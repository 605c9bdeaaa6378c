// `podmeshctl endpoints NAME`: the pods behind one service, resolved by the code the daemons run
// (lib/service/endpoints.ts): one row per pod address with the ports it is called on. A pod value
// that fails validation is skipped, as every node skips it, and reported through `warn`.
import { resolveEndpoints } from '../service/endpoints'
import type { PodRecord } from '../service/types'
import type { StoreClient } from '../store/client'
import { listPods } from '../store/pods'
import { getService } from '../store/service-read'
import { type OutputFormat, formatJson, formatTable } from './output'

export const endpointsHelp = 'podmeshctl endpoints NAME   the pods behind a service: pod, node, address, target ports (-o json|table)\n'

export interface EndpointRow {
  /** namespace/name when the runtime gave them (Kubernetes), else the container ID. */
  pod: string
  id: string
  node: string
  ip: string
  /** The ports the pod is called on: `8080/tcp`. */
  ports: string[]
}

export async function runEndpoints (client: StoreClient, prefix: string, name: string, format: OutputFormat, warn: (line: string) => void): Promise<string> {
  const service = await getService(client, prefix, name)
  const pods = await listPods(client, prefix, (_key, e) => warn(`skipped ${e.message}`))
  const byKey = new Map<string, PodRecord>(pods.map(p => [`${p.node}/${p.id}`, p]))
  const ports = service.ports.map(p => `${p.targetPort}/${p.protocol}`)
  const rows: EndpointRow[] = (resolveEndpoints([service], pods, '').get(name) ?? []).map(e => {
    const p = byKey.get(`${e.node}/${e.pod}`)
    const shown = p?.namespace !== undefined && p.name !== undefined ? `${p.namespace}/${p.name}` : p?.name ?? e.pod
    return { pod: shown, id: e.pod, node: e.node, ip: e.ip, ports }
  })
  if (format === 'json') return formatJson(rows)
  return formatTable([['POD', 'NODE', 'IP', 'PORTS'], ...rows.map(r => [r.pod, r.node, r.ip, r.ports.join(',')])])
}

// A pod's report in the spool (one file per container ID, `<id>.json`): what the CNI plugin
// writes on ADD and podmeshd reads, then publishes as pods/<node>/<id>. Versioned JSON, checked
// field by field when read (a bad file is reported and skipped by the reader, never trusted);
// turned into the PodRecord etcd holds. Pure.
import { CONTAINER_ID_RULE, isContainerId } from '../service/names'
import { isPodName } from './env'
import { isInterfaceName } from '../config/interface-name'
import { formatIp, parseIp } from '../ipam/cidr'
import { validLabelKey, validLabelValue } from '../service/selector'
import type { PodRecord } from '../service/types'

export const POD_REPORT_VERSION = 1

export interface PodReport {
  v: 1
  /** The CNI container ID. */
  id: string
  /** The pod's interface inside its namespace. */
  ifname: string
  /** One address per family, IPv4 first (no prefix length). */
  ips: string[]
  namespace?: string
  name?: string
  labels: Record<string, string>
  /** The network namespace path the runtime gave (for an operator's eyes; never opened). */
  netns: string
}

export class PodReportError extends Error {
  readonly code = 'EPODREPORT'
  constructor (readonly file: string, message: string, options?: { cause?: unknown }) {
    super(`pod report ${file}: ${message}`, options)
    this.name = 'PodReportError'
  }
}
export const isPodReportError = (e: unknown): e is PodReportError => e instanceof PodReportError

/** The spool file of a container ID; a name not of this form is no report. */
export const reportFileName = (id: string): string => `${id}.json`
export function idOfReportFile (file: string): string | undefined {
  if (!file.endsWith('.json')) return undefined
  const id = file.slice(0, -'.json'.length)
  return isContainerId(id) ? id : undefined
}

/** Labels with their keys sorted: one text for one set of labels, whatever order they came in. */
export const sortedLabels = (labels: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.keys(labels).sort().map(k => [k, labels[k] as string]))

/** The file's text: fields in the documented order, labels sorted, one line. */
export const formatPodReport = (r: PodReport): string => JSON.stringify({
  v: r.v,
  id: r.id,
  ifname: r.ifname,
  ips: r.ips,
  ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
  ...(r.name !== undefined ? { name: r.name } : {}),
  labels: sortedLabels(r.labels),
  netns: r.netns
}) + '\n'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const FIELDS = new Set(['v', 'id', 'ifname', 'ips', 'namespace', 'name', 'labels', 'netns'])

/** Parses and checks a report; `file` names it in errors, and its name must carry the report's id. */
export function parsePodReport (file: string, text: string): PodReport {
  const fail = (msg: string): PodReportError => new PodReportError(file, msg)
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch (e) {
    throw new PodReportError(file, `not JSON: ${(e as Error).message}`, { cause: e })
  }
  if (!isObject(o)) throw fail('not a JSON object')
  if (o.v !== POD_REPORT_VERSION) throw fail(`version ${JSON.stringify(o.v)} is not ${POD_REPORT_VERSION}`)
  const unknown = Object.keys(o).filter(k => !FIELDS.has(k))
  if (unknown.length > 0) throw fail(`unknown field ${unknown.map(k => JSON.stringify(k)).join(', ')}`)
  if (typeof o.id !== 'string' || !isContainerId(o.id)) throw fail(`id must be a container ID (${CONTAINER_ID_RULE})`)
  const named = idOfReportFile(file.slice(file.lastIndexOf('/') + 1))
  if (named !== undefined && named !== o.id) throw fail(`holds id ${o.id}, not the ${named} its name says`)
  if (typeof o.ifname !== 'string' || !isInterfaceName(o.ifname)) throw fail('ifname must be an interface name')
  if (!Array.isArray(o.ips) || o.ips.length === 0 || o.ips.length > 2) throw fail('ips must list one or two addresses')
  const ips = o.ips.map(ip => {
    if (typeof ip !== 'string') throw fail('ips must be strings')
    let p
    try { p = parseIp(ip) } catch { throw fail(`"${ip}" is not an IP address`) }
    if (formatIp(p.family, p.addr) !== ip) throw fail(`"${ip}" is not in canonical form`)
    return { family: p.family, ip }
  })
  if (ips.length === 2 && !(ips[0]?.family === 4 && ips[1]?.family === 6)) throw fail('two ips must be one IPv4 then one IPv6')
  for (const k of ['namespace', 'name'] as const) {
    const v = o[k]
    if (v !== undefined && (typeof v !== 'string' || !isPodName(v))) throw fail(`${k} must be a Kubernetes name`)
  }
  if (!isObject(o.labels)) throw fail('labels must be an object')
  for (const [k, v] of Object.entries(o.labels)) {
    if (!validLabelKey(k)) throw fail(`label key "${k}" is not valid`)
    if (typeof v !== 'string' || !validLabelValue(v)) throw fail(`label ${k}: ${JSON.stringify(v)} is not a valid value`)
  }
  if (typeof o.netns !== 'string') throw fail('netns must be a string')
  const r: PodReport = { v: 1, id: o.id, ifname: o.ifname, ips: ips.map(i => i.ip), labels: { ...o.labels } as Record<string, string>, netns: o.netns }
  if (typeof o.namespace === 'string') r.namespace = o.namespace
  if (typeof o.name === 'string') r.name = o.name
  return r
}

/** Whether two reports say the same (CHECK: the file against what the runtime says now). */
export const sameReport = (a: PodReport, b: PodReport): boolean => formatPodReport(a) === formatPodReport(b)

/** The PodRecord published for a report on `node` (docs/services.md, pods/<node>/<id>). */
export const podRecordOf = (r: PodReport, node: string): PodRecord => ({
  v: 1,
  id: r.id,
  node,
  ifname: r.ifname,
  ips: [...r.ips],
  ...(r.namespace !== undefined ? { namespace: r.namespace } : {}),
  ...(r.name !== undefined ? { name: r.name } : {}),
  labels: sortedLabels(r.labels)
})

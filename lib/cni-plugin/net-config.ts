// The network config a runtime gives the plugin on stdin: the conflist's entry for it
// (`{"type":"podmesh","podDir":…}`) plus name, cniVersion, prevResult and the CNI conventions'
// `args.cni.labels`. Checked here with errors that name the field (CNI codes 6 and 7). Pure.
import { isAbsolute } from 'node:path'
import { CNI_CODE, CniError } from './cni-error'
import { isSupportedVersion, SUPPORTED_VERSIONS } from './versions'
import { validLabelKey, validLabelValue } from '../service/selector'
import { MAX_LABELS } from '../service/service-value'

export const DEFAULT_POD_DIR = '/run/podmesh/pods'

export interface NetConfig {
  cniVersion: string
  name: string
  /** Where the pod reports go (the spool podmeshd reads). */
  podDir: string
  /** The previous plugin's result, as given: passed through unchanged. */
  prevResult?: Record<string, unknown>
  labels: Record<string, string>
}

const bad = (msg: string, details = ''): CniError => new CniError(CNI_CODE.invalidNetworkConfig, msg, details)
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** `args.cni.labels`: `[{"key":"app","value":"web"}]`; a bad or repeated key, or a bad value, is named. */
export function parseLabels (v: unknown): Record<string, string> {
  if (v === undefined) return {}
  if (!Array.isArray(v)) throw bad('args.cni.labels must be a list of {"key","value"}')
  // Readers of pods/ refuse more (service-value.ts): refused here, not published never.
  if (v.length > MAX_LABELS) throw bad(`args.cni.labels has ${v.length} labels, more than ${MAX_LABELS}`)
  const out: Record<string, string> = {}
  for (const [i, l] of v.entries()) {
    if (!isObject(l) || typeof l.key !== 'string' || typeof l.value !== 'string') {
      throw bad(`args.cni.labels[${i}] must be {"key": string, "value": string}`, JSON.stringify(l) ?? '')
    }
    if (!validLabelKey(l.key)) throw bad(`label key "${l.key}" is not a valid label key`, l.key)
    if (!validLabelValue(l.value)) throw bad(`label ${l.key}: "${l.value}" is not a valid label value`, l.value)
    if (Object.hasOwn(out, l.key)) throw bad(`label key "${l.key}" given twice`, l.key)
    out[l.key] = l.value
  }
  return out
}

/** The cniVersion of a config, read leniently: for the error object when the rest is bad. */
export function configVersion (text: string): string | undefined {
  try {
    const o = JSON.parse(text) as unknown
    return isObject(o) && typeof o.cniVersion === 'string' && o.cniVersion !== '' ? o.cniVersion : undefined
  } catch {
    return undefined
  }
}

/**
 * Parses the config on stdin. `forDel`: labels are not read, so that a pod added under an older,
 * laxer plugin can always be deleted (DEL needs only podDir).
 */
export function parseNetConfig (text: string, opts: { forDel?: boolean } = {}): NetConfig {
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch (e) {
    throw new CniError(CNI_CODE.decodeFailure, `network config on stdin is not JSON: ${(e as Error).message}`, '', { cause: e })
  }
  if (!isObject(o)) throw new CniError(CNI_CODE.decodeFailure, 'network config on stdin is not a JSON object')
  if (typeof o.cniVersion !== 'string' || o.cniVersion === '') throw bad('cniVersion is missing')
  if (!isSupportedVersion(o.cniVersion)) {
    throw new CniError(CNI_CODE.incompatibleVersion, `cniVersion ${o.cniVersion} is not supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`, o.cniVersion)
  }
  if (typeof o.name !== 'string' || o.name === '') throw bad('name is missing')
  if (o.type !== undefined && o.type !== 'podmesh') throw bad(`type is "${String(o.type)}", not "podmesh"`)
  let podDir = DEFAULT_POD_DIR
  if (o.podDir !== undefined) {
    if (typeof o.podDir !== 'string' || !isAbsolute(o.podDir)) throw bad('podDir must be an absolute path', JSON.stringify(o.podDir))
    podDir = o.podDir
  }
  if (o.prevResult !== undefined && !isObject(o.prevResult)) throw bad('prevResult must be an object')
  const args = o.args
  if (args !== undefined && !isObject(args)) throw bad('args must be an object')
  const cni = args?.cni
  if (cni !== undefined && !isObject(cni)) throw bad('args.cni must be an object')
  const out: NetConfig = { cniVersion: o.cniVersion, name: o.name, podDir, labels: opts.forDel === true ? {} : parseLabels(cni?.labels) }
  if (o.prevResult !== undefined) out.prevResult = o.prevResult
  return out
}

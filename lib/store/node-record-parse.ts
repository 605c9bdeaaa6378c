// Strict validation of a node record read back from etcd (untrusted input): schema, name ↔ key,
// pod CIDRs inside the cluster ranges at the configured subnet length, endpoint, key, MAC, MTU.
// Subnet *ownership* (subnets/ keys) is checked by the watcher, which sees those keys. Pure.
import { canonicalCidr, containsCidr, containsIp, parseCidr } from '../ipam/cidr'
import type { NetworkConfig } from '../config/network'
import { type NodeRecord, NODE_RECORD_VERSION } from './node-record'
import { isNodeName } from './keys'
import { type Endpoint, parseRecordEndpoint } from './endpoint'
import { isWireguardKey } from './wireguard-key'
import { MAC_RULE, isMac } from './mac'
import { RecordError } from './record-error'

/** Node records are small; anything bigger is hostile or broken and is not even parsed. */
export const MAX_RECORD_BYTES = 16 * 1024

const FIELDS = ['v', 'name', 'generation', 'endpoint', 'publicKey', 'podCIDRs', 'vxlan', 'mtu', 'location', 'since'] as const
const LOCATION_RE = /^[A-Za-z0-9._-]{1,63}$/
/** The node name a nodes/ key ends with (everything after the last "/"). */
const keySuffix = (key: string): string => key.slice(key.lastIndexOf('/') + 1)

export function parseNodeRecord (key: string, value: string, config: NetworkConfig): NodeRecord {
  const fail = (problem: ConstructorParameters<typeof RecordError>[1], msg: string, cause?: unknown): never => {
    throw new RecordError(key, problem, msg, cause === undefined ? undefined : { cause })
  }
  if (value.length > MAX_RECORD_BYTES) fail('tooLarge', `record is ${value.length} bytes (limit ${MAX_RECORD_BYTES})`)
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch (e) {
    fail('json', `record is not JSON: ${(e as Error).message}`, e)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('type', 'record must be a JSON object')
  const o = parsed as Record<string, unknown>
  for (const k of Object.keys(o)) {
    if (!(FIELDS as readonly string[]).includes(k)) fail('unknownField', `unknown field "${k}"`)
  }
  if (o.v !== NODE_RECORD_VERSION) fail('version', `unsupported record version ${JSON.stringify(o.v)} (expected ${NODE_RECORD_VERSION})`)

  if (typeof o.name !== 'string' || !isNodeName(o.name)) fail('name', `name ${JSON.stringify(o.name)} is not a valid node name`)
  const name = o.name as string
  if (name !== keySuffix(key)) fail('name', `name "${name}" does not match the key's node name "${keySuffix(key)}"`)

  if (typeof o.generation !== 'number' || !Number.isSafeInteger(o.generation) || o.generation < 0) {
    fail('generation', `generation ${JSON.stringify(o.generation)} must be a non-negative integer`)
  }

  if (typeof o.endpoint !== 'string') fail('endpoint', `endpoint must be a string "ip:port", got ${JSON.stringify(o.endpoint)}`)
  let endpoint: Endpoint | undefined
  try {
    endpoint = parseRecordEndpoint(o.endpoint as string)
  } catch (e) {
    fail('endpoint', `endpoint ${(e as Error).message}`, e)
  }
  // An endpoint inside a pod range would be routed into the tunnel it is the endpoint of.
  const ep = endpoint as Endpoint
  for (const range of [config.ipv4, config.ipv6]) {
    if (range !== undefined && containsIp(parseCidr(range.cidr), ep.family, ep.addr)) {
      fail('endpoint', `endpoint "${o.endpoint as string}" is inside the cluster's pod range ${range.cidr}; it would be routed into the tunnel`)
    }
  }

  if (o.publicKey !== undefined && (typeof o.publicKey !== 'string' || !isWireguardKey(o.publicKey))) {
    fail('publicKey', `publicKey ${JSON.stringify(o.publicKey)?.slice(0, 60) ?? 'undefined'} must be the base64 text of a 32-byte WireGuard key, not all zero`)
  }

  const podCIDRs = parsePodCidrs(key, o.podCIDRs, config)

  if (o.vxlan !== undefined) {
    const vx = o.vxlan
    if (typeof vx !== 'object' || vx === null || Array.isArray(vx)) fail('type', 'vxlan must be an object {"mac": ...}')
    const keys = Object.keys(vx as object)
    const unknown = keys.find(k => k !== 'mac')
    if (unknown !== undefined) fail('unknownField', `unknown field "vxlan.${unknown}"`)
    const mac = (vx as Record<string, unknown>).mac
    if (typeof mac !== 'string' || !isMac(mac)) fail('mac', `vxlan.mac ${JSON.stringify(mac)} is not ${MAC_RULE}`)
    const first = parseInt((mac as string).slice(0, 2), 16)
    // A multicast (group bit) or all-zero MAC cannot be a VTEP address.
    if ((first & 1) === 1 || mac === '00:00:00:00:00:00') fail('mac', `vxlan.mac ${mac as string} is not a unicast MAC`)
  }

  const minMtu = config.ipv6 !== undefined ? 1280 : 576
  if (typeof o.mtu !== 'number' || !Number.isInteger(o.mtu) || o.mtu < minMtu || o.mtu > 9000) {
    fail('mtu', `mtu ${JSON.stringify(o.mtu)} must be an integer in ${minMtu}..9000`)
  }

  if (o.location !== undefined && (typeof o.location !== 'string' || !LOCATION_RE.test(o.location))) {
    fail('location', `location ${JSON.stringify(o.location)} must be 1-63 characters of [A-Za-z0-9._-]`)
  }
  if (o.since !== undefined && (typeof o.since !== 'string' || o.since.length > 40 || Number.isNaN(Date.parse(o.since)))) {
    fail('since', `since ${JSON.stringify(o.since)} is not an ISO 8601 time`)
  }

  // Rebuild rather than cast: the returned object holds exactly the validated fields.
  const rec: NodeRecord = {
    v: NODE_RECORD_VERSION,
    name,
    generation: o.generation as number,
    endpoint: o.endpoint as string,
    podCIDRs,
    mtu: o.mtu as number
  }
  if (o.publicKey !== undefined) rec.publicKey = o.publicKey as string
  if (o.vxlan !== undefined) rec.vxlan = { mac: (o.vxlan as { mac: string }).mac }
  if (o.location !== undefined) rec.location = o.location as string
  if (o.since !== undefined) rec.since = o.since as string
  return rec
}

function parsePodCidrs (key: string, value: unknown, config: NetworkConfig): string[] {
  const fail = (msg: string): never => { throw new RecordError(key, 'podCIDRs', msg) }
  if (!Array.isArray(value) || value.some(v => typeof v !== 'string')) fail('podCIDRs must be an array of CIDR strings')
  const list = value as string[]
  const families = ([4, 6] as const).filter(f => config[f === 4 ? 'ipv4' : 'ipv6'] !== undefined)
  if (list.length !== families.length) {
    fail(`podCIDRs has ${list.length} entries; the cluster needs exactly one per family (IPv${families.join(', IPv')}), IPv4 first`)
  }
  families.forEach((f, i) => {
    const text = list[i] ?? ''
    const range = f === 4 ? config.ipv4 : config.ipv6
    if (range === undefined) return
    let canonical: string
    try {
      canonical = canonicalCidr(text)
    } catch (e) {
      return fail(`podCIDRs[${i}] ${JSON.stringify(text)}: ${(e as Error).message}`)
    }
    if (canonical !== text) fail(`podCIDRs[${i}] "${text}" is not canonical (expected "${canonical}")`)
    const c = parseCidr(text)
    if (c.family !== f) fail(`podCIDRs[${i}] "${text}" must be an IPv${f} subnet (IPv4 first)`)
    if (!containsCidr(parseCidr(range.cidr), c)) fail(`podCIDRs[${i}] "${text}" is outside the cluster range ${range.cidr}`)
    if (c.len !== range.subnetLen) fail(`podCIDRs[${i}] "${text}" is not a /${range.subnetLen} (the cluster's subnet length)`)
  })
  return [...list]
}

// Parsing and validation of the cluster's network config (<prefix>config): strict about
// meaning (CIDRs, lengths, bounds, ports), applies DEFAULTS, returns canonical CIDR text.
// Pure; every failure is a ConfigError naming the field and the problem.
import {
  type Cidr, type Family, CidrError, containsCidr, familyBits, formatCidr, overlaps, parseCidr,
  subnetCount, subnetIndex
} from '../ipam/cidr'
import { type BackendType, type FamilyRange, type NetworkConfig, type ServiceRanges, CONFIG_VERSION, DEFAULTS } from './network'
import { ConfigError } from './config-error'
import { specialOverlap } from '../ipam/special-ranges'

export { ConfigError, isConfigError } from './config-error'

/** Longest node subnet per family: a node subnet must hold a gateway and some pods. */
const MAX_SUBNET_LEN: Record<Family, number> = { 4: 30, 6: 124 }
/**
 * Shortest pod range accepted without `allowWideRange` (set by `podmeshctl init --force`): a
 * wider range swallows most of the address space, underlay and etcd included, and is almost
 * always a typo (/1 for /16).
 */
export const MIN_RANGE_LEN: Record<Family, number> = { 4: 8, 6: 32 }
/**
 * Prefix lengths a service range may have. The short end is kube-apiserver's: at most 20 host
 * bits (/12, /108), beyond which it refuses --service-cluster-ip-range (it keeps a bitmap per
 * range); podmesh walks a range for a free address (lib/store/service-pick.ts), and the same bound
 * keeps that walk under 2^20 steps. The long end keeps 16 addresses (14 usable in IPv4, 15 in IPv6).
 */
export const SERVICE_RANGE_LEN: Record<Family, { min: number, max: number }> = { 4: { min: 12, max: 28 }, 6: { min: 108, max: 124 } }
const BACKENDS: readonly BackendType[] = ['wireguard', 'vxlan']
/** IPv4-mapped IPv6 (::ffff:0:0/96) is IPv4 in disguise; it would overlap the ipv4 family. */
const V4_MAPPED = parseCidr('::ffff:0:0/96')

type Obj = Record<string, unknown>

function object (field: string, value: unknown): Obj {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(field, 'type', `must be an object, got ${describe(value)}`)
  }
  return value as Obj
}

function onlyFields (field: string, o: Obj, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      const at = field === '' ? k : `${field}.${k}`
      throw new ConfigError(at, 'unknownField', `unknown field (allowed: ${allowed.join(', ')})`)
    }
  }
}

function integer (field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new ConfigError(field, 'type', `must be an integer, got ${describe(value)}`)
  }
  if (value < min || value > max) throw new ConfigError(field, 'range', `${value} is outside ${min}..${max}`)
  return value
}

function describe (v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)
  if (typeof v === 'object') return 'an object'
  return `${typeof v} ${String(v)}`
}

function cidrField (field: string, value: unknown, family: Family): Cidr {
  if (typeof value !== 'string') throw new ConfigError(field, 'type', `must be a CIDR string, got ${describe(value)}`)
  let c: Cidr
  try {
    c = parseCidr(value.trim())
  } catch (e) {
    if (e instanceof CidrError) {
      // Tell "host bits set" apart from "not a CIDR at all": the fix differs.
      const loose = tryParse(value.trim())
      if (loose !== undefined) {
        throw new ConfigError(field, 'hostBits', `"${value}" has host bits set (the network is ${formatCidr(loose)})`, { cause: e })
      }
      throw new ConfigError(field, 'cidr', `"${value}" is not a valid CIDR: ${e.message}`, { cause: e })
    }
    throw e
  }
  if (c.family !== family) {
    throw new ConfigError(field, 'family', `"${value}" is an IPv${c.family} CIDR; it belongs under ipv${c.family}`)
  }
  if (family === 6 && containsCidr(V4_MAPPED, c)) {
    throw new ConfigError(field, 'family', `"${value}" is IPv4-mapped IPv6; put IPv4 pod ranges under ipv4`)
  }
  return c
}

function tryParse (text: string): Cidr | undefined {
  try { return parseCidr(text, { allowHostBits: true }) } catch { return undefined }
}

/** A pod range must be routable unicast space of pod-network size, never a default route. */
function checkPodRange (field: string, range: Cidr, allowWide: boolean): void {
  const text = formatCidr(range)
  if (range.len === 0) {
    throw new ConfigError(field, 'defaultRoute', `${text} is a default route, not a pod range; routing it would take over the host's traffic`)
  }
  const special = specialOverlap(range)
  if (special !== undefined) {
    throw new ConfigError(field, 'reserved', `${text} overlaps ${special.range}, which is ${special.why}; pods cannot use it`)
  }
  const min = MIN_RANGE_LEN[range.family]
  if (range.len < min && !allowWide) {
    throw new ConfigError(field, 'tooWide',
      `${text} is wider than /${min}; too wide to be a pod network (use a longer prefix, or init --force to accept it)`)
  }
}

function parseFamily (field: string, value: unknown, family: Family, allowWide: boolean): FamilyRange {
  const o = object(field, value)
  onlyFields(field, o, ['cidr', 'subnetLen', 'subnetMin', 'subnetMax'])
  if (o.cidr === undefined) throw new ConfigError(`${field}.cidr`, 'missing', 'is required')
  const range = cidrField(`${field}.cidr`, o.cidr, family)
  checkPodRange(`${field}.cidr`, range, allowWide)
  const defLen = family === 4 ? DEFAULTS.subnetLen4 : DEFAULTS.subnetLen6
  const subnetLen = o.subnetLen === undefined ? defLen : integer(`${field}.subnetLen`, o.subnetLen, 0, familyBits(family))
  const max = MAX_SUBNET_LEN[family]
  if (subnetLen < range.len || subnetLen > max) {
    throw new ConfigError(`${field}.subnetLen`, 'subnetLen',
      `/${subnetLen} does not fit ${formatCidr(range)}: it must be between /${range.len + 1} and /${max}`)
  }
  if (subnetLen === range.len) {
    throw new ConfigError(`${field}.subnetLen`, 'tooFewSubnets',
      `/${subnetLen} cuts ${formatCidr(range)} into only 1 subnet; need at least 2 (use a longer subnetLen)`)
  }
  const out: FamilyRange = { cidr: formatCidr(range), subnetLen }
  const bound = (name: 'subnetMin' | 'subnetMax'): Cidr | undefined => {
    if (o[name] === undefined) return undefined
    const f = `${field}.${name}`
    const c = cidrField(f, o[name], family)
    if (c.len !== subnetLen) throw new ConfigError(f, 'bounds', `${formatCidr(c)} must be a /${subnetLen} subnet (the subnetLen)`)
    if (!containsCidr(range, c)) throw new ConfigError(f, 'bounds', `${formatCidr(c)} is outside ${formatCidr(range)}`)
    out[name] = formatCidr(c)
    return c
  }
  const lo = bound('subnetMin')
  const hi = bound('subnetMax')
  const first = lo === undefined ? 0n : subnetIndex(range, lo)
  const last = hi === undefined ? subnetCount(range, subnetLen) - 1n : subnetIndex(range, hi)
  if (last < first) {
    throw new ConfigError(`${field}.subnetMin`, 'bounds', `subnetMin ${out.subnetMin ?? ''} is above subnetMax ${out.subnetMax ?? ''}`)
  }
  if (last - first + 1n < 2n) {
    throw new ConfigError(`${field}.subnetMax`, 'tooFewSubnets',
      `subnetMin..subnetMax holds only ${last - first + 1n} subnet; need at least 2`)
  }
  return out
}

function parseBackend (value: unknown): NetworkConfig['backend'] {
  const o = value === undefined ? {} : object('backend', value)
  onlyFields('backend', o, ['type', 'wireguard', 'vxlan'])
  const type = o.type ?? 'wireguard'
  if (typeof type !== 'string' || !(BACKENDS as readonly string[]).includes(type)) {
    throw new ConfigError('backend.type', 'backend', `unknown backend ${describe(type)} (known: ${BACKENDS.join(', ')})`)
  }
  const wg = o.wireguard === undefined ? {} : object('backend.wireguard', o.wireguard)
  onlyFields('backend.wireguard', wg, ['port', 'persistentKeepalive', 'vxlanWithinLocation'])
  const vx = o.vxlan === undefined ? {} : object('backend.vxlan', o.vxlan)
  onlyFields('backend.vxlan', vx, ['vni', 'port'])
  const within = wg.vxlanWithinLocation ?? false
  if (typeof within !== 'boolean') {
    throw new ConfigError('backend.wireguard.vxlanWithinLocation', 'type', `must be a boolean, got ${describe(within)}`)
  }
  return {
    type: type as BackendType,
    wireguard: {
      port: integer('backend.wireguard.port', wg.port ?? DEFAULTS.wireguardPort, 1, 65535),
      persistentKeepalive: integer('backend.wireguard.persistentKeepalive', wg.persistentKeepalive ?? DEFAULTS.persistentKeepalive, 0, 65535),
      vxlanWithinLocation: within
    },
    vxlan: {
      // VNI is 24 bits; 0 is legal on the wire but reads as "unset" in too many tools.
      vni: integer('backend.vxlan.vni', vx.vni ?? DEFAULTS.vxlanVni, 1, 0xffffff),
      port: integer('backend.vxlan.port', vx.port ?? DEFAULTS.vxlanPort, 1, 65535)
    }
  }
}

/** `services.ipv4`/`ipv6`: a routable range of the right size, with a pod range of its family, overlapping none. */
function serviceRange (field: string, value: unknown, family: Family, config: NetworkConfig): string {
  const c = cidrField(field, value, family)
  const text = formatCidr(c)
  const { min, max } = SERVICE_RANGE_LEN[family]
  if (c.len < min || c.len > max) {
    throw new ConfigError(field, 'serviceRangeLen', `${text}: a service range must be between /${min} and /${max}`)
  }
  const special = specialOverlap(c)
  if (special !== undefined) {
    throw new ConfigError(field, 'reserved', `${text} overlaps ${special.range}, which is ${special.why}; services cannot use it`)
  }
  const pods = family === 4 ? config.ipv4 : config.ipv6
  if (pods === undefined) {
    throw new ConfigError(field, 'noFamily', `${text} is an IPv${family} service range, but the cluster has no ipv${family} pod range to send its traffic to`)
  }
  if (overlaps(c, parseCidr(pods.cidr))) {
    throw new ConfigError(field, 'overlap', `${text} overlaps the pod range ${pods.cidr}; service IPs and pod IPs must be apart`)
  }
  return text
}

function parseServiceRanges (value: unknown, config: NetworkConfig): ServiceRanges {
  const o = object('services', value)
  onlyFields('services', o, ['ipv4', 'ipv6', 'nodePortRange'])
  if (o.ipv4 === undefined && o.ipv6 === undefined) {
    throw new ConfigError('services.ipv4', 'noFamily', 'neither ipv4 nor ipv6 is given; a services section needs at least one service range')
  }
  const r = o.nodePortRange === undefined ? {} : object('services.nodePortRange', o.nodePortRange)
  onlyFields('services.nodePortRange', r, ['min', 'max'])
  const min = integer('services.nodePortRange.min', r.min ?? DEFAULTS.nodePortMin, 1, 65535)
  const max = integer('services.nodePortRange.max', r.max ?? DEFAULTS.nodePortMax, 1, 65535)
  if (min > max) throw new ConfigError('services.nodePortRange', 'range', `min ${min} is above max ${max}`)
  // A NodePort is DNAT on every node address: one on the tunnel's own UDP port would take the tunnel.
  const tunnel = [
    ['backend.wireguard.port', config.backend.wireguard.port],
    ['backend.vxlan.port', config.backend.vxlan.port]
  ] as const
  for (const [name, port] of tunnel) {
    const used = name === 'backend.wireguard.port'
      ? config.backend.type === 'wireguard'
      : config.backend.type === 'vxlan' || config.backend.wireguard.vxlanWithinLocation
    if (used && port >= min && port <= max) {
      throw new ConfigError('services.nodePortRange', 'range', `${min}-${max} contains ${name} ${port}; a NodePort there would capture the tunnel's packets`)
    }
  }
  const out: Partial<ServiceRanges> = {}
  if (o.ipv4 !== undefined) out.ipv4 = serviceRange('services.ipv4', o.ipv4, 4, config)
  if (o.ipv6 !== undefined) out.ipv6 = serviceRange('services.ipv6', o.ipv6, 6, config)
  return { ...out, nodePortRange: { min, max } }
}

/** Validates a network config (as read from etcd or built from flags) and fills defaults. */
export function parseNetworkConfig (value: unknown): NetworkConfig {
  const o = object('config', value)
  onlyFields('', o, ['v', 'ipv4', 'ipv6', 'backend', 'mtu', 'allowWideRange', 'services'])
  if (o.v !== CONFIG_VERSION) {
    const what = o.v === undefined ? 'config version is missing' : `unsupported config version ${JSON.stringify(o.v)}`
    throw new ConfigError('v', 'version', `${what} (this podmesh reads v${CONFIG_VERSION})`)
  }
  if (o.ipv4 === undefined && o.ipv6 === undefined) {
    throw new ConfigError('ipv4', 'noFamily', 'neither ipv4 nor ipv6 is configured; at least one pod range is required')
  }
  if (o.allowWideRange !== undefined && o.allowWideRange !== true) {
    throw new ConfigError('allowWideRange', 'type', `must be true or absent, got ${describe(o.allowWideRange)}`)
  }
  const allowWide = o.allowWideRange === true
  const config: NetworkConfig = { v: CONFIG_VERSION, backend: parseBackend(o.backend) }
  if (o.ipv4 !== undefined) config.ipv4 = parseFamily('ipv4', o.ipv4, 4, allowWide)
  if (o.ipv6 !== undefined) config.ipv6 = parseFamily('ipv6', o.ipv6, 6, allowWide)
  if (allowWide) config.allowWideRange = true
  if (o.mtu !== undefined) {
    // An IPv6 pod network needs an MTU of at least 1280 (RFC 8200).
    config.mtu = integer('mtu', o.mtu, config.ipv6 !== undefined ? 1280 : 576, 9000)
  }
  if (o.services !== undefined) config.services = parseServiceRanges(o.services, config)
  return config
}

/** Parses the JSON text stored at <prefix>config. */
export function parseNetworkConfigJson (text: string): NetworkConfig {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    throw new ConfigError('config', 'json', `not valid JSON: ${(e as Error).message}`, { cause: e })
  }
  return parseNetworkConfig(value)
}

/** Flags of `podmeshctl init`, as strings the way util.parseArgs yields them. */
export interface NetworkFlags {
  'ipv4-cidr'?: string
  'ipv6-cidr'?: string
  'subnet-len4'?: string
  'subnet-len6'?: string
  'subnet-min4'?: string
  'subnet-max4'?: string
  'subnet-min6'?: string
  'subnet-max6'?: string
  backend?: string
  'wg-port'?: string
  keepalive?: string
  'vxlan-vni'?: string
  'vxlan-port'?: string
  mtu?: string
  'vxlan-within-location'?: boolean
  /** Repeatable: one service range per family. */
  'service-cidr'?: string[]
  /** `MIN-MAX`, e.g. 30000-32767. */
  'node-port-range'?: string
}

/** Config field → the flag that sets it, so errors from init name what the operator typed. */
const FLAG_OF: Record<string, keyof NetworkFlags> = {
  'ipv4.cidr': 'ipv4-cidr',
  'ipv6.cidr': 'ipv6-cidr',
  'ipv4.subnetLen': 'subnet-len4',
  'ipv6.subnetLen': 'subnet-len6',
  'ipv4.subnetMin': 'subnet-min4',
  'ipv4.subnetMax': 'subnet-max4',
  'ipv6.subnetMin': 'subnet-min6',
  'ipv6.subnetMax': 'subnet-max6',
  'backend.type': 'backend',
  'backend.wireguard.port': 'wg-port',
  'backend.wireguard.persistentKeepalive': 'keepalive',
  'backend.vxlan.vni': 'vxlan-vni',
  'backend.vxlan.port': 'vxlan-port',
  mtu: 'mtu',
  'services.ipv4': 'service-cidr',
  'services.ipv6': 'service-cidr',
  'services.nodePortRange': 'node-port-range',
  'services.nodePortRange.min': 'node-port-range',
  'services.nodePortRange.max': 'node-port-range'
}

/** `--service-cidr` (each family at most once) and `--node-port-range MIN-MAX` as a services section. */
function serviceFlags (flags: NetworkFlags): Obj | undefined {
  const cidrs = flags['service-cidr'] ?? []
  const range = flags['node-port-range']
  if (cidrs.length === 0) {
    if (range !== undefined) throw new ConfigError('--node-port-range', 'flag', 'needs --service-cidr')
    return undefined
  }
  const out: Obj = {}
  for (const text of cidrs) {
    const c = tryParse(text.trim())
    if (c === undefined) throw new ConfigError('--service-cidr', 'cidr', `"${text}" is not a valid CIDR`)
    const f = c.family === 4 ? 'ipv4' : 'ipv6'
    if (out[f] !== undefined) throw new ConfigError('--service-cidr', 'flag', `two IPv${c.family} service ranges (${String(out[f])}, ${text}); give one per family`)
    out[f] = text.trim()
  }
  if (range !== undefined) {
    const m = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(range)
    if (m === null) throw new ConfigError('--node-port-range', 'flag', `"${range}" is not MIN-MAX (e.g. 30000-32767)`)
    out.nodePortRange = { min: Number(m[1]), max: Number(m[2]) }
  }
  return out
}

function isWide (cidr: unknown): boolean {
  if (typeof cidr !== 'string') return false
  const c = tryParse(cidr.trim())
  return c !== undefined && c.len < MIN_RANGE_LEN[c.family]
}

function intFlag (name: keyof NetworkFlags, text: string | undefined): number | undefined {
  if (text === undefined) return undefined
  if (!/^\d{1,9}$/.test(text.trim())) throw new ConfigError(`--${name}`, 'flag', `"${text}" is not a non-negative integer`)
  return Number(text.trim())
}

/** Warnings an operator must see for a valid config: pod ranges wider than MIN_RANGE_LEN. */
export function networkConfigWarnings (config: NetworkConfig): string[] {
  const out: string[] = []
  for (const [name, r] of [['ipv4', config.ipv4], ['ipv6', config.ipv6]] as const) {
    if (r === undefined) continue
    const c = parseCidr(r.cidr)
    const min = MIN_RANGE_LEN[c.family]
    if (c.len < min) out.push(`${name}.cidr ${r.cidr} is wider than /${min}; accepted because it was forced (allowWideRange)`)
  }
  return out
}

/**
 * Builds and validates a config from `podmeshctl init` flags; errors name the flag. `force`
 * accepts a pod range wider than MIN_RANGE_LEN (recorded as allowWideRange, so every daemon
 * accepts it too); never a default route or a reserved range.
 */
export function buildNetworkConfig (flags: NetworkFlags, opts: { force?: boolean } = {}): NetworkConfig {
  const raw: Obj = { v: CONFIG_VERSION }
  const fam = (f: Family): Obj | undefined => {
    const cidr = flags[f === 4 ? 'ipv4-cidr' : 'ipv6-cidr']
    const rest = [`subnet-len${f}`, `subnet-min${f}`, `subnet-max${f}`] as const
    if (cidr === undefined) {
      const stray = rest.find(k => flags[k] !== undefined)
      if (stray !== undefined) throw new ConfigError(`--${stray}`, 'flag', `needs --ipv${f}-cidr`)
      return undefined
    }
    const r: Obj = { cidr }
    const len = intFlag(`subnet-len${f}`, flags[`subnet-len${f}`])
    if (len !== undefined) r.subnetLen = len
    if (flags[`subnet-min${f}`] !== undefined) r.subnetMin = flags[`subnet-min${f}`]
    if (flags[`subnet-max${f}`] !== undefined) r.subnetMax = flags[`subnet-max${f}`]
    return r
  }
  const v4 = fam(4)
  const v6 = fam(6)
  if (v4 !== undefined) raw.ipv4 = v4
  if (v6 !== undefined) raw.ipv6 = v6
  const wireguard: Obj = {}
  const wgPort = intFlag('wg-port', flags['wg-port'])
  const keepalive = intFlag('keepalive', flags.keepalive)
  if (wgPort !== undefined) wireguard.port = wgPort
  if (keepalive !== undefined) wireguard.persistentKeepalive = keepalive
  if (flags['vxlan-within-location'] === true) wireguard.vxlanWithinLocation = true
  const vxlan: Obj = {}
  const vni = intFlag('vxlan-vni', flags['vxlan-vni'])
  const vxPort = intFlag('vxlan-port', flags['vxlan-port'])
  if (vni !== undefined) vxlan.vni = vni
  if (vxPort !== undefined) vxlan.port = vxPort
  raw.backend = { type: flags.backend ?? 'wireguard', wireguard, vxlan }
  const mtu = intFlag('mtu', flags.mtu)
  if (mtu !== undefined) raw.mtu = mtu
  if (v4 === undefined && v6 === undefined) {
    throw new ConfigError('--ipv4-cidr', 'noFamily', 'give --ipv4-cidr and/or --ipv6-cidr')
  }
  if (opts.force === true && [v4, v6].some(r => isWide(r?.cidr))) raw.allowWideRange = true
  const services = serviceFlags(flags)
  if (services !== undefined) raw.services = services
  try {
    return parseNetworkConfig(raw)
  } catch (e) {
    const flag = e instanceof ConfigError ? FLAG_OF[e.field] : undefined
    if (e instanceof ConfigError && flag !== undefined) {
      throw new ConfigError(`--${flag}`, e.problem, e.message, { cause: e })
    }
    throw e
  }
}

// podmeshd's options: one declarative schema gives the flags, the PODMESH_* environment
// variables, the config-file keys and the --help text. Precedence: flag > environment > file >
// default. Parsing is pure (argv, env and file content are passed in); errors name the option.

import { hostname } from 'node:os'
import { isAbsolute } from 'node:path'
import { NODE_NAME_RULE, isNodeName } from '../store/keys'
import { INTERFACE_NAME_RULE, isInterfaceName } from './interface-name'
import { type EtcdOptions, resolveEtcdOptions } from './etcd-options'
import { ETCD_FLAGS, type EtcdField } from './etcd-flags'
import { NODE_FLAGS, type NodeField, checkNodeFlag } from './node-flags'
import type { SharedFlag } from './shared-flag'
import { DEFAULT_POD_DIR } from '../cni-plugin/net-config'
import { isConfigError } from './config-error'

type Kind = 'string' | 'list' | 'int' | 'bool' | 'duration'

interface OptionSpec {
  flag: string
  /** Default: PODMESH_<FLAG>. */
  env?: string
  kind: Kind
  help: string
  default?: string | number | boolean | string[]
  /** Never printed in logs or dumps. */
  secret?: boolean
  choices?: readonly string[]
  /** Declared in etcd-flags.ts, shared with podmeshctl: collected raw, validated by resolveEtcdOptions. */
  etcdField?: EtcdField
}

/** A flag shared with podmeshctl, as podmeshd declares it: everything from the one table. */
function sharedSpec (f: SharedFlag): OptionSpec {
  return {
    flag: f.flag,
    env: f.env,
    kind: f.kind,
    help: f.help,
    ...(f.default !== undefined ? { default: f.default } : {}),
    ...(f.secret === true ? { secret: true } : {})
  }
}
const etcdSpec = <F extends EtcdField>(field: F): OptionSpec & { flag: (typeof ETCD_FLAGS)[F]['flag'], etcdField: F } =>
  ({ ...sharedSpec(ETCD_FLAGS[field]), flag: ETCD_FLAGS[field].flag, etcdField: field })
const nodeSpec = <F extends NodeField>(field: F): OptionSpec & { flag: (typeof NODE_FLAGS)[F]['flag'] } =>
  ({ ...sharedSpec(NODE_FLAGS[field]), flag: NODE_FLAGS[field].flag })

export const OPTION_SPECS = {
  config: { flag: 'config', kind: 'string', help: 'JSON file with any of these options (keys are the flag names)' },
  etcdEndpoints: etcdSpec('endpoints'),
  etcdCa: etcdSpec('caFile'),
  etcdCert: etcdSpec('certFile'),
  etcdKey: etcdSpec('keyFile'),
  etcdUsername: etcdSpec('username'),
  etcdPassword: etcdSpec('password'),
  cluster: etcdSpec('cluster'),
  prefix: etcdSpec('prefix'),
  nodeName: { flag: 'node-name', kind: 'string', help: 'this node\'s name, its identity in etcd (default: hostname)' },
  publicAddress: nodeSpec('publicAddress'),
  publicInterface: nodeSpec('publicInterface'),
  location: { flag: 'location', kind: 'string', help: 'topology label (site, rack); nodes sharing it use VXLAN in mixed mode' },
  subnets: { flag: 'subnets', kind: 'list', help: 'ask for these pod subnets (one per family), comma-separated' },
  wgInterface: nodeSpec('wgInterface'),
  wgMode: { flag: 'wg-mode', kind: 'string', help: 'kernel WireGuard, userspace wireguard-go, or auto', default: 'auto', choices: ['auto', 'kernel', 'userspace'] },
  vxlanInterface: nodeSpec('vxlanInterface'),
  stateDir: { flag: 'state-dir', kind: 'string', help: 'private key, subnet and VTEP MAC survive restarts here', default: '/var/lib/podmesh' },
  cniConfDir: nodeSpec('cniConfDir'),
  cniNetwork: nodeSpec('cniNetwork'),
  cniBridge: { flag: 'cni-bridge', kind: 'string', help: 'pod bridge name', default: 'podmesh-br0' },
  cniDataDir: { flag: 'cni-data-dir', kind: 'string', help: 'host-local IPAM state dir (default: the plugin\'s own)' },
  podDir: { flag: 'pod-dir', kind: 'string', help: 'spool where the podmesh CNI plugin reports pods (clusters with services)', default: DEFAULT_POD_DIR },
  masquerade: { flag: 'masquerade', kind: 'bool', help: 'masquerade pod traffic to destinations outside all pod CIDRs', default: false },
  metricsAddress: { flag: 'metrics-address', kind: 'string', help: 'host:port for /healthz, /readyz, /metrics; empty disables', default: '127.0.0.1:9475' },
  resyncInterval: { flag: 'resync-interval', kind: 'duration', help: 'full reconcile period that repairs drift', default: '30s' },
  pathMtuDiscovery: { flag: 'path-mtu-discovery', kind: 'bool', help: 'probe the path MTU toward routed peers and give their pod routes a smaller MTU where the path is narrower than the interface', default: true },
  pathMtuInterval: { flag: 'path-mtu-interval', kind: 'duration', help: 'how often each routed peer\'s path MTU is probed again', default: '1h' },
  leaseTtl: { flag: 'lease-ttl', kind: 'duration', help: 'TTL of the node\'s etcd lease (its keys outlive a dead node this long)', default: '1h' },
  leave: { flag: 'leave', kind: 'bool', help: 'on stop, decommission: delete this node from etcd and remove its tunnel', default: false },
  logLevel: { flag: 'log-level', kind: 'string', help: 'pino level', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] }
} as const satisfies Record<string, OptionSpec>

export type OptionName = keyof typeof OPTION_SPECS

export interface DaemonOptions {
  etcdEndpoints: string[]
  etcdCa?: string
  etcdCert?: string
  etcdKey?: string
  etcdUsername?: string
  etcdPassword?: string
  cluster: string
  prefix: string
  nodeName: string
  publicAddress?: string
  publicInterface?: string
  location?: string
  subnets?: string[]
  wgInterface: string
  wgMode: 'auto' | 'kernel' | 'userspace'
  vxlanInterface: string
  stateDir: string
  cniConfDir: string
  cniNetwork: string
  cniBridge: string
  cniDataDir?: string
  podDir: string
  masquerade: boolean
  metricsAddress: string
  resyncIntervalMs: number
  pathMtuDiscovery: boolean
  pathMtuIntervalMs: number
  leaseTtlSeconds: number
  leave: boolean
  logLevel: string
}

export class OptionsError extends Error {
  readonly code = 'EOPTIONS'
  constructor (message: string) { super(message); this.name = 'OptionsError' }
}
export const isOptionsError = (e: unknown): e is OptionsError => e instanceof OptionsError

const envName = (flag: string): string => `PODMESH_${flag.toUpperCase().replace(/-/g, '_')}`
const envOf = (spec: OptionSpec): string => spec.env ?? envName(spec.flag)

export function parseDuration (text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim())
  if (m === null) throw new OptionsError(`${what}: "${text}" is not a duration (e.g. 500ms, 30s, 5m, 1h)`)
  const n = Number(m[1])
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h']
  return Math.round(n * unit)
}

function coerce (name: string, spec: OptionSpec, raw: unknown, origin: string): unknown {
  const what = `${origin} ${name}`
  if (spec.etcdField !== undefined) return raw
  switch (spec.kind) {
    case 'bool':
      if (typeof raw === 'boolean') return raw
      if (raw === 'true' || raw === '1' || raw === 'yes') return true
      if (raw === 'false' || raw === '0' || raw === 'no' || raw === '') return false
      throw new OptionsError(`${what}: "${String(raw)}" is not true or false`)
    case 'int': {
      const n = Number(raw)
      if (!Number.isInteger(n)) throw new OptionsError(`${what}: "${String(raw)}" is not an integer`)
      return n
    }
    case 'list':
      if (Array.isArray(raw)) return raw.map(String)
      if (typeof raw !== 'string') throw new OptionsError(`${what}: expected a comma-separated list`)
      return raw.split(',').map(s => s.trim()).filter(s => s !== '')
    case 'duration':
      return typeof raw === 'number' ? raw : raw
    case 'string':
      if (typeof raw !== 'string') throw new OptionsError(`${what}: expected a string`)
      if (spec.choices !== undefined && !spec.choices.includes(raw)) {
        throw new OptionsError(`${what}: "${raw}" is not one of ${spec.choices.join(', ')}`)
      }
      return raw
  }
}

/** " at line L, column C" from a JSON.parse message's "position N", or '' when it has none. */
function jsonErrorPlace (text: string, message: string): string {
  const m = /position (\d+)/.exec(message)
  if (m === null) return ''
  const before = text.slice(0, Number(m[1])).split('\n')
  return ` at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`
}

export interface OptionSources {
  argv: readonly string[]
  env: Readonly<Record<string, string | undefined>>
  /** Reads the --config file; injected so parsing stays pure. */
  readFile?: (path: string) => string
}

/** Parses argv/env/file into raw values per option name. Throws OptionsError; returns 'help' for --help. */
function collect (src: OptionSources): Record<string, unknown> | 'help' {
  const byFlag = new Map<string, { name: string, spec: OptionSpec }>(Object.entries(OPTION_SPECS).map(([name, s]) => [s.flag, { name, spec: s as OptionSpec }]))
  const fromFlags: Record<string, unknown> = {}
  const argv = [...src.argv]
  while (argv.length > 0) {
    const arg = argv.shift() as string
    if (arg === '--help' || arg === '-h') return 'help'
    if (!arg.startsWith('--')) throw new OptionsError(`unexpected argument "${arg}" (podmeshd takes only --flags; see --help)`)
    const eq = arg.indexOf('=')
    let flag = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
    let value: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1)
    let negated = false
    if (!byFlag.has(flag) && flag.startsWith('no-') && byFlag.get(flag.slice(3))?.spec.kind === 'bool') { flag = flag.slice(3); negated = true }
    const entry = byFlag.get(flag)
    if (entry === undefined) throw new OptionsError(`unknown flag --${flag} (see --help)`)
    if (entry.spec.kind === 'bool' && value === undefined) {
      value = negated ? 'false' : (argv[0] === 'true' || argv[0] === 'false' ? argv.shift() as string : 'true')
    } else if (value === undefined) {
      if (argv.length === 0 || (argv[0] as string).startsWith('--')) throw new OptionsError(`flag --${flag} needs a value`)
      value = argv.shift() as string
    }
    fromFlags[entry.name] = coerce(`--${flag}`, entry.spec, value, 'flag')
  }
  const out: Record<string, unknown> = {}
  const configPath = (fromFlags.config ?? src.env[envName('config')]) as string | undefined
  if (configPath !== undefined && configPath !== '') {
    if (src.readFile === undefined) throw new OptionsError('config file given but no way to read it')
    let parsed: unknown
    const text = src.readFile(configPath)
    try {
      parsed = JSON.parse(text)
    } catch (e) {
      // V8's message quotes the text around the error, and the file holds the etcd password:
      // say where, never what.
      throw new OptionsError(`config file ${configPath}: not valid JSON${jsonErrorPlace(text, (e as Error).message)}`)
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new OptionsError(`config file ${configPath}: expected a JSON object`)
    for (const [k, v] of Object.entries(parsed)) {
      const entry = byFlag.get(k)
      if (entry === undefined) throw new OptionsError(`config file ${configPath}: unknown option "${k}"`)
      out[entry.name] = coerce(k, entry.spec, v, `config file ${configPath}:`)
    }
  }
  for (const [name, spec] of Object.entries(OPTION_SPECS) as Array<[string, OptionSpec]>) {
    const e = src.env[envOf(spec)]
    if (e !== undefined && name !== 'config') out[name] = coerce(envOf(spec), spec, e, 'environment')
  }
  return { ...out, ...fromFlags }
}

/** The etcd part of the daemon's options, through the one etcd-options parser (podmeshctl's too). */
function etcdOptionsOf (raw: Partial<Record<OptionName, unknown>>): EtcdOptions {
  const input: Partial<Record<EtcdField, unknown>> = {}
  for (const [name, spec] of Object.entries(OPTION_SPECS) as Array<[OptionName, OptionSpec]>) {
    if (spec.etcdField !== undefined) input[spec.etcdField] = raw[name]
  }
  // The environment is already in `raw` (flag > environment > file), read by the same names.
  return asOptionsError(() => resolveEtcdOptions(input))
}

/** A shared rule's ConfigError (it names the flag) as podmeshd's OptionsError, same message. */
function asOptionsError<T> (check: () => T): T {
  try {
    return check()
  } catch (e) {
    if (!isConfigError(e)) throw e
    throw new OptionsError(e.message)
  }
}

export function parseDaemonOptions (src: OptionSources): DaemonOptions | 'help' {
  const raw = collect(src)
  if (raw === 'help') return raw
  const get = <T>(name: OptionName): T => (raw[name] ?? (OPTION_SPECS[name] as OptionSpec).default) as T
  // The etcd options follow podmeshctl's rules exactly (one definition: etcd-flags.ts, etcd-options.ts).
  const etcd = etcdOptionsOf(raw)
  const nodeName = get<string | undefined>('nodeName') ?? hostname()
  if (!isNodeName(nodeName)) throw new OptionsError(`--node-name "${nodeName}" must be ${NODE_NAME_RULE}`)
  // So do the node-local flags podmeshctl diff and doctor share (node-flags.ts).
  const publicAddress = get<string | undefined>('publicAddress')
  if (publicAddress !== undefined) asOptionsError(() => checkNodeFlag('publicAddress', publicAddress))
  for (const n of ['wgInterface', 'vxlanInterface', 'cniConfDir', 'cniNetwork'] as const) asOptionsError(() => checkNodeFlag(n, get<string>(n)))
  const bridge = get<string>('cniBridge')
  if (!isInterfaceName(bridge)) throw new OptionsError(`--cni-bridge: "${bridge}" is not a valid interface name (${INTERFACE_NAME_RULE})`)
  const resyncIntervalMs = parseDuration(String(get('resyncInterval')), '--resync-interval')
  if (resyncIntervalMs < 100) throw new OptionsError('--resync-interval must be at least 100ms')
  const pathMtuIntervalMs = parseDuration(String(get('pathMtuInterval')), '--path-mtu-interval')
  if (pathMtuIntervalMs < 10_000) throw new OptionsError('--path-mtu-interval must be at least 10s')
  const leaseTtlSeconds = Math.round(parseDuration(String(get('leaseTtl')), '--lease-ttl') / 1000)
  if (leaseTtlSeconds < 5) throw new OptionsError('--lease-ttl must be at least 5s')
  const podDir = get<string>('podDir')
  if (!isAbsolute(podDir)) throw new OptionsError(`--pod-dir "${podDir}" must be an absolute path`)
  const metricsAddress = get<string>('metricsAddress')
  if (metricsAddress !== '' && !/^[^\s]+:\d{1,5}$/.test(metricsAddress)) throw new OptionsError(`--metrics-address "${metricsAddress}" is not host:port`)
  const opt = <K extends OptionName>(k: K): Record<string, unknown> => raw[k] === undefined ? {} : { [k]: raw[k] }
  return {
    etcdEndpoints: etcd.endpoints,
    ...(etcd.caFile !== undefined ? { etcdCa: etcd.caFile } : {}),
    ...(etcd.certFile !== undefined ? { etcdCert: etcd.certFile } : {}),
    ...(etcd.keyFile !== undefined ? { etcdKey: etcd.keyFile } : {}),
    ...(etcd.username !== undefined ? { etcdUsername: etcd.username } : {}),
    ...(etcd.password !== undefined ? { etcdPassword: etcd.password } : {}),
    cluster: etcd.cluster,
    prefix: etcd.prefix,
    nodeName,
    ...(publicAddress !== undefined ? { publicAddress } : {}),
    ...opt('publicInterface'), ...opt('location'), ...opt('subnets'), ...opt('cniDataDir'),
    wgInterface: get('wgInterface'),
    wgMode: get('wgMode'),
    vxlanInterface: get('vxlanInterface'),
    stateDir: get('stateDir'),
    cniConfDir: get('cniConfDir'),
    cniNetwork: get('cniNetwork'),
    cniBridge: get('cniBridge'),
    podDir,
    masquerade: get('masquerade'),
    metricsAddress,
    resyncIntervalMs,
    pathMtuDiscovery: get('pathMtuDiscovery'),
    pathMtuIntervalMs,
    leaseTtlSeconds,
    leave: get('leave'),
    logLevel: get('logLevel')
  } as DaemonOptions
}

/** The options with secrets replaced, for the startup log line and dumps. */
export function redactOptions (o: DaemonOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o }
  for (const [name, spec] of Object.entries(OPTION_SPECS) as Array<[string, OptionSpec]>) {
    if (spec.secret === true && out[name] !== undefined) out[name] = '[redacted]'
  }
  return out
}

export function helpText (): string {
  const lines = ['Usage: podmeshd [--flag value]...', '', 'Every flag can also be set as PODMESH_<FLAG> in the environment or as "<flag>" in the --config JSON file.', '']
  for (const spec of Object.values(OPTION_SPECS) as OptionSpec[]) {
    const def = spec.default === undefined ? '' : ` (default: ${Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default)})`
    const choices = spec.choices === undefined ? '' : ` [${spec.choices.join('|')}]`
    lines.push(`  --${spec.flag.padEnd(18)} ${envOf(spec).padEnd(26)} ${spec.help}${choices}${def}`)
  }
  return lines.join('\n') + '\n'
}

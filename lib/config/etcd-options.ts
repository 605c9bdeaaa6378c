// How podmesh reaches etcd: endpoints, TLS files, user/password, and the key prefix. The one
// validation of the flags declared in etcd-flags.ts, for podmeshd and podmeshctl alike: flags
// over PODMESH_* environment variables over defaults; redacted before any log line. Pure.
import { ConfigError } from './config-error'
import { ETCD_FLAGS, type EtcdField, flagOf } from './etcd-flags'
import { CLUSTER_NAME_RULE, isClusterName, normalisePrefix } from '../store/keys'

export interface EtcdOptions {
  /** Client URLs ("http://127.0.0.1:2379", "https://etcd-1:2379"). */
  endpoints: string[]
  caFile?: string
  certFile?: string
  keyFile?: string
  username?: string
  password?: string
  /** Cluster name; only used to build the default prefix. */
  cluster: string
  /** Key prefix, ends with "/": every podmesh key lives under it. Default /podmesh/<cluster>/. */
  prefix: string
}

/**
 * Raw values per field, as a CLI collected them (flags win over environment): text, or for
 * endpoints also an array (podmeshd's --config file). Anything else is refused with the flag named.
 */
export type EtcdOptionsInput = Partial<Record<EtcdField, unknown>>

export const DEFAULT_CLUSTER = 'default'
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379'

export const defaultPrefix = (cluster: string): string => `/podmesh/${cluster}/`

/** Where a prefix points: `cluster "c"` for the default layout (/podmesh/<c>/), else the prefix itself. */
export function describePrefix (prefix: string): string {
  const cluster = /^\/podmesh\/([^/]+)\/$/.exec(prefix)?.[1]
  return cluster !== undefined && defaultPrefix(cluster) === prefix ? `cluster "${cluster}"` : `prefix "${prefix}"`
}

/** An endpoint as error messages show it: any user:password@ part blanked. */
const shown = (text: string): string => text.replace(/^([a-z]+:\/\/)?[^@/]*@/i, '$1[redacted]@')

function endpoint (text: string, tls: boolean): string {
  const flag = flagOf('endpoints')
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `${tls ? 'https' : 'http'}://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch (e) {
    throw new ConfigError(flag, 'endpoint', `"${shown(text)}" is not a URL or host:port`, { cause: e })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(flag, 'endpoint', `"${shown(text)}": scheme must be http or https`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError(flag, 'endpoint', `credentials in an endpoint URL (user:password@) are refused; use ${flagOf('username')} and ${flagOf('password')}`)
  }
  if (url.port === '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new ConfigError(flag, 'endpoint', `"${shown(text)}" must be scheme://host:port with an explicit port and no path`)
  }
  return `${url.protocol}//${url.host}`
}

/** One field's raw value, type-checked; '' (an empty flag or variable) means not given. */
function given (field: EtcdField, raw: unknown): string | string[] | undefined {
  if (raw === undefined || raw === '') return undefined
  if (typeof raw === 'string') return raw
  if (ETCD_FLAGS[field].kind === 'list' && Array.isArray(raw) && raw.every(v => typeof v === 'string')) return raw as string[]
  const want = ETCD_FLAGS[field].kind === 'list' ? 'a comma-separated string or an array of strings' : 'a string'
  throw new ConfigError(flagOf(field), 'type', `expected ${want}, got ${Array.isArray(raw) ? 'an array' : raw === null ? 'null' : `a ${typeof raw}`}`)
}

/** Resolves flags over environment over defaults into validated options; errors name the flag. */
export function resolveEtcdOptions (flags: EtcdOptionsInput, env: Record<string, string | undefined> = {}): EtcdOptions {
  const pick = (k: EtcdField): string | string[] | undefined => given(k, flags[k] ?? env[ETCD_FLAGS[k].env])
  const text = (k: EtcdField): string | undefined => {
    const v = pick(k)
    return Array.isArray(v) ? v.join(',') : v
  }
  const caFile = text('caFile')
  const certFile = text('certFile')
  const keyFile = text('keyFile')
  const username = text('username')
  const password = text('password')
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(flagOf(certFile === undefined ? 'certFile' : 'keyFile'), 'pair', `a client certificate needs both ${flagOf('certFile')} and ${flagOf('keyFile')}`)
  }
  if ((username === undefined) !== (password === undefined)) {
    throw new ConfigError(flagOf(username === undefined ? 'username' : 'password'), 'pair', `etcd auth needs both ${flagOf('username')} and ${flagOf('password')}`)
  }
  const tls = caFile !== undefined || certFile !== undefined
  const raw = pick('endpoints') ?? DEFAULT_ENDPOINT
  const list = (Array.isArray(raw) ? raw : raw.split(',')).map(s => s.trim()).filter(s => s !== '')
  if (list.length === 0) throw new ConfigError(flagOf('endpoints'), 'missing', 'no etcd endpoint given')
  const endpoints = list.map(e => endpoint(e, tls))
  const schemes = new Set(endpoints.map(e => e.slice(0, e.indexOf(':'))))
  if (schemes.size > 1) throw new ConfigError(flagOf('endpoints'), 'endpoint', 'endpoints mix http and https')
  const cluster = text('cluster') ?? DEFAULT_CLUSTER
  if (!isClusterName(cluster)) throw new ConfigError(flagOf('cluster'), 'type', `"${cluster}" must be ${CLUSTER_NAME_RULE}`)
  const wanted = text('prefix') ?? defaultPrefix(cluster)
  const prefix = normalisePrefix(wanted)
  if (prefix === undefined) throw new ConfigError(flagOf('prefix'), 'type', `"${wanted}" must start with "/" and hold no "//" (e.g. /podmesh/default/)`)
  const out: EtcdOptions = { endpoints, cluster, prefix }
  if (caFile !== undefined) out.caFile = caFile
  if (certFile !== undefined) out.certFile = certFile
  if (keyFile !== undefined) out.keyFile = keyFile
  if (username !== undefined) out.username = username
  if (password !== undefined) out.password = password
  return out
}

/** A copy safe for logs and config dumps: the password never leaves the process. */
export function redactEtcdOptions (o: EtcdOptions): Record<string, unknown> {
  return { ...o, ...(o.password !== undefined ? { password: '[redacted]' } : {}) }
}

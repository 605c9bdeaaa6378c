// How podmesh reaches etcd: endpoints, TLS files, user/password, and the key prefix. Resolved
// from flags and PODMESH_ETCD_* environment variables; redacted before any log line. Pure.
import { ConfigError } from './config-error'
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

/** Raw inputs (flags win over environment). */
export interface EtcdOptionsInput {
  endpoints?: string
  caFile?: string
  certFile?: string
  keyFile?: string
  username?: string
  password?: string
  cluster?: string
  prefix?: string
}

export const DEFAULT_CLUSTER = 'default'
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379'


/** Environment variable names, one per input field. */
export const ETCD_ENV: Record<keyof EtcdOptionsInput, string> = {
  endpoints: 'PODMESH_ETCD_ENDPOINTS',
  caFile: 'PODMESH_ETCD_CA',
  certFile: 'PODMESH_ETCD_CERT',
  keyFile: 'PODMESH_ETCD_KEY',
  username: 'PODMESH_ETCD_USERNAME',
  password: 'PODMESH_ETCD_PASSWORD',
  cluster: 'PODMESH_CLUSTER',
  prefix: 'PODMESH_PREFIX'
}

export const defaultPrefix = (cluster: string): string => `/podmesh/${cluster}/`

/** An endpoint as error messages show it: any user:password@ part blanked. */
const shown = (text: string): string => text.replace(/^([a-z]+:\/\/)?[^@/]*@/i, '$1[redacted]@')

function endpoint (text: string, tls: boolean): string {
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `${tls ? 'https' : 'http'}://${text}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch (e) {
    throw new ConfigError('etcd.endpoints', 'endpoint', `"${shown(text)}" is not a URL or host:port`, { cause: e })
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('etcd.endpoints', 'endpoint', `"${shown(text)}": scheme must be http or https`)
  }
  if (url.username !== '' || url.password !== '') {
    throw new ConfigError('etcd.endpoints', 'endpoint', 'credentials in an endpoint URL (user:password@) are refused; use --etcd-username and --etcd-password')
  }
  if (url.port === '' || (url.pathname !== '/' && url.pathname !== '')) {
    throw new ConfigError('etcd.endpoints', 'endpoint', `"${shown(text)}" must be scheme://host:port with an explicit port and no path`)
  }
  return `${url.protocol}//${url.host}`
}

/** Resolves flags over environment over defaults into validated options. */
export function resolveEtcdOptions (flags: EtcdOptionsInput, env: Record<string, string | undefined> = {}): EtcdOptions {
  const pick = (k: keyof EtcdOptionsInput): string | undefined => {
    const v = flags[k] ?? env[ETCD_ENV[k]]
    return v === undefined || v === '' ? undefined : v
  }
  const caFile = pick('caFile')
  const certFile = pick('certFile')
  const keyFile = pick('keyFile')
  const username = pick('username')
  const password = pick('password')
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError(certFile === undefined ? 'etcd.certFile' : 'etcd.keyFile', 'pair', 'a client certificate needs both --etcd-cert and --etcd-key')
  }
  if ((username === undefined) !== (password === undefined)) {
    throw new ConfigError(username === undefined ? 'etcd.username' : 'etcd.password', 'pair', 'etcd auth needs both --etcd-username and --etcd-password')
  }
  const tls = caFile !== undefined || certFile !== undefined
  const list = (pick('endpoints') ?? DEFAULT_ENDPOINT).split(',').map(s => s.trim()).filter(s => s !== '')
  if (list.length === 0) throw new ConfigError('etcd.endpoints', 'missing', 'no etcd endpoint given')
  const endpoints = list.map(e => endpoint(e, tls))
  const schemes = new Set(endpoints.map(e => e.slice(0, e.indexOf(':'))))
  if (schemes.size > 1) throw new ConfigError('etcd.endpoints', 'endpoint', 'endpoints mix http and https')
  const cluster = pick('cluster') ?? DEFAULT_CLUSTER
  if (!isClusterName(cluster)) throw new ConfigError('cluster', 'type', `"${cluster}" must be ${CLUSTER_NAME_RULE}`)
  const given = pick('prefix') ?? defaultPrefix(cluster)
  const prefix = normalisePrefix(given)
  if (prefix === undefined) throw new ConfigError('etcd.prefix', 'type', `"${given}" must start with "/" and hold no "//" (e.g. /podmesh/default/)`)
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

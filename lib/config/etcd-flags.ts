// The flags that say how to reach etcd, declared once for podmeshd and podmeshctl: flag name,
// environment variable, kind, help text. Both CLIs build their parsers and --help from this
// table and validate through resolveEtcdOptions (etcd-options.ts), so they cannot diverge. Pure data.
import type { SharedFlag } from './shared-flag'

/** The fields of EtcdOptions that come from a flag. */
export type EtcdField = 'endpoints' | 'caFile' | 'certFile' | 'keyFile' | 'username' | 'password' | 'cluster' | 'prefix'

export const ETCD_FLAGS = {
  endpoints: { flag: 'etcd-endpoints', env: 'PODMESH_ETCD_ENDPOINTS', kind: 'list', arg: 'URLS', help: 'etcd client URLs, comma-separated (no user:password@; a bare host:port is https with TLS files)', default: 'http://127.0.0.1:2379' },
  caFile: { flag: 'etcd-ca', env: 'PODMESH_ETCD_CA', kind: 'string', arg: 'FILE', help: 'CA bundle that signs the etcd server certificate' },
  certFile: { flag: 'etcd-cert', env: 'PODMESH_ETCD_CERT', kind: 'string', arg: 'FILE', help: 'client certificate for etcd (needs --etcd-key)' },
  keyFile: { flag: 'etcd-key', env: 'PODMESH_ETCD_KEY', kind: 'string', arg: 'FILE', help: 'client key for etcd (needs --etcd-cert)', secret: true },
  username: { flag: 'etcd-username', env: 'PODMESH_ETCD_USERNAME', kind: 'string', arg: 'NAME', help: 'etcd user (needs --etcd-password)' },
  password: { flag: 'etcd-password', env: 'PODMESH_ETCD_PASSWORD', kind: 'string', arg: 'PASS', help: 'etcd password; prefer the environment variable, a flag shows in ps', secret: true },
  cluster: { flag: 'cluster', env: 'PODMESH_CLUSTER', kind: 'string', arg: 'NAME', help: 'cluster name, a DNS label; the key prefix is /podmesh/<cluster>/', default: 'default' },
  prefix: { flag: 'prefix', env: 'PODMESH_PREFIX', kind: 'string', arg: 'PREFIX', help: 'etcd key prefix (overrides /podmesh/<cluster>/)' }
} as const satisfies Record<EtcdField, SharedFlag>

export const ETCD_FIELDS = Object.keys(ETCD_FLAGS) as EtcdField[]

/** "--etcd-endpoints": how errors and help name a field. */
export const flagOf = (field: EtcdField): string => `--${ETCD_FLAGS[field].flag}`

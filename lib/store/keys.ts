// The etcd key layout under the cluster prefix — public API, documented in the README:
//   <prefix>config             the network config
//   <prefix>subnets/<cidr>     one key per leased subnet, "/" written as "-" (10.244.3.0-24)
//   <prefix>nodes/<name>       the node record
//   <prefix>status/<name>      what the node observes (short lease)
// Building keys and parsing them back; a malformed key is rejected, never guessed at. Pure.
import { canonicalCidr } from '../ipam/cidr'

export type ParsedKey =
  | { kind: 'config' }
  | { kind: 'subnet', cidr: string }
  | { kind: 'node', name: string }
  | { kind: 'status', name: string }

export class KeyError extends Error {
  readonly code = 'EKEY'
  readonly key: string
  constructor (key: string, message: string) {
    super(`key ${JSON.stringify(key)}: ${message}`)
    this.name = 'KeyError'
    this.key = key
  }
}
export const isKeyError = (e: unknown): e is KeyError => e instanceof KeyError

// The one definition of each name and of the prefix, for podmeshd (daemon options), podmeshctl
// (etcd options) and every reader of keys: what one accepts the other must too.

/** Node names are DNS-label-like: lower-case alphanumerics, '-' and '.', ≤ 63 characters. */
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/
export const isNodeName = (name: string): boolean => NODE_NAME_RE.test(name)
export const NODE_NAME_RULE = "lower-case letters, digits, '-' and '.', starting and ending alphanumeric, at most 63 characters"

/** Cluster names are DNS labels: they name the prefix /podmesh/<cluster>/. */
const CLUSTER_NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/
export const isClusterName = (name: string): boolean => CLUSTER_NAME_RE.test(name)
export const CLUSTER_NAME_RULE = "a DNS label: lower-case letters, digits and '-', starting and ending alphanumeric, at most 63 characters"

/**
 * The key prefix, with a missing trailing "/" added (so "/podmesh/x" means the folder, never a
 * prefix of "/podmesh/xy/"); undefined when it cannot be one (must start with "/", no "//").
 */
export function normalisePrefix (prefix: string): string | undefined {
  const p = prefix.endsWith('/') ? prefix : `${prefix}/`
  return p.startsWith('/') && p.length >= 2 && !p.includes('//') ? p : undefined
}

export const configKey = (prefix: string): string => `${prefix}config`
export const subnetsPrefix = (prefix: string): string => `${prefix}subnets/`
export const nodesPrefix = (prefix: string): string => `${prefix}nodes/`
export const statusPrefix = (prefix: string): string => `${prefix}status/`

/** The key of a subnet lease; `cidr` must already be canonical. */
export const subnetKey = (prefix: string, cidr: string): string => `${subnetsPrefix(prefix)}${cidr.replace('/', '-')}`
export const nodeKey = (prefix: string, name: string): string => `${nodesPrefix(prefix)}${name}`
export const statusKey = (prefix: string, name: string): string => `${statusPrefix(prefix)}${name}`

/** The exclusive end of an etcd prefix range ("abc/" → "abc0"), as bytes. */
export function prefixEnd (p: string): Buffer {
  const b = Buffer.from(p)
  for (let i = b.length - 1; i >= 0; i--) {
    const byte = b[i] ?? 0xff
    if (byte !== 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1))
      end[i] = byte + 1
      return end
    }
  }
  return Buffer.from([0])
}

/** The subnet CIDR from a subnets/ key suffix ("10.244.3.0-24" → "10.244.3.0/24"); must be canonical. */
export function subnetFromSuffix (key: string, suffix: string): string {
  const dash = suffix.lastIndexOf('-')
  if (dash < 0) throw new KeyError(key, 'subnet key has no "-<prefix length>"')
  const cidr = `${suffix.slice(0, dash)}/${suffix.slice(dash + 1)}`
  let canonical: string
  try {
    canonical = canonicalCidr(cidr)
  } catch (e) {
    throw new KeyError(key, `subnet key is not a CIDR: ${(e as Error).message}`)
  }
  if (canonical !== cidr) throw new KeyError(key, `subnet key is not canonical (expected ${subnetKey('', canonical).slice('subnets/'.length)})`)
  return cidr
}

export function parseKey (prefix: string, key: string): ParsedKey {
  if (!key.startsWith(prefix)) throw new KeyError(key, `not under prefix ${prefix}`)
  const rest = key.slice(prefix.length)
  if (rest === 'config') return { kind: 'config' }
  const slash = rest.indexOf('/')
  if (slash < 0) throw new KeyError(key, 'unknown key')
  const dir = rest.slice(0, slash)
  const suffix = rest.slice(slash + 1)
  switch (dir) {
    case 'subnets':
      return { kind: 'subnet', cidr: subnetFromSuffix(key, suffix) }
    case 'nodes':
    case 'status':
      if (!isNodeName(suffix)) throw new KeyError(key, `"${suffix}" is not a valid node name`)
      return { kind: dir === 'nodes' ? 'node' : 'status', name: suffix }
    default:
      throw new KeyError(key, `unknown directory "${dir}"`)
  }
}

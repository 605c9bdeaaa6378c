// etcd RBAC for a podmesh cluster, as plain data: the roles podmeshctl creates and the key
// ranges each may touch. etcd v3 grants read/write/readwrite on a single key or a key range;
// it cannot say "create only" or "only if the value names you", so a node's role is as narrow
// as ranges allow and the rest is left to the claim rules (docs/operations.md, "Least privilege").
// Pure: lib/ctl/auth.ts applies these to etcd.
import { nodeKey, prefixEnd, statusKey, subnetsPrefix } from './keys'
import { nodePodsPrefix } from './service-keys'

export type PermissionType = 'Read' | 'Write' | 'Readwrite'

/** One grant: a single key (`end` absent) or the range [key, end). */
export interface Grant {
  permission: PermissionType
  key: string
  end?: Buffer
}

/** Full access to the cluster's keys: routine podmeshctl commands (init, node remove). */
export const ADMIN_ROLE = 'podmesh-admin'
export const ADMIN_USER = 'podmesh-admin'
/** Read-only access to the cluster's keys: dashboards, `podmeshctl nodes/status/topology`. */
export const READ_ROLE = 'podmesh-read'

/** The user and role of one node; the role is per node because it names the node's keys. */
export const nodeUser = (name: string): string => `podmesh-node-${name}`
export const nodeRole = nodeUser

const range = (permission: PermissionType, key: string): Grant => ({ permission, key, end: prefixEnd(key) })

export const adminGrants = (prefix: string): Grant[] => [range('Readwrite', prefix)]
export const readGrants = (prefix: string): Grant[] => [range('Read', prefix)]

/**
 * A node reads everything under the prefix (config, every record, services for its rules, for
 * its watch), writes exactly its own record and status keys and its own pods/<node>/ folder, and
 * writes the subnets/ range — it must create its subnet leases, and etcd cannot tell a create
 * from an overwrite or a delete. services/, serviceips/ and nodeports/ are the admin's alone: a
 * node never writes a service, so a compromised node cannot redirect one.
 */
export const nodeGrants = (prefix: string, name: string): Grant[] => [
  range('Read', prefix),
  { permission: 'Readwrite', key: nodeKey(prefix, name) },
  { permission: 'Readwrite', key: statusKey(prefix, name) },
  range('Readwrite', subnetsPrefix(prefix)),
  range('Readwrite', nodePodsPrefix(prefix, name))
]

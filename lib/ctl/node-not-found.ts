// The error of every podmeshctl subcommand that names a node etcd does not know (status, diff,
// node remove): one line for the operator that says which node and which cluster was asked, so
// a typo and a wrong --cluster look different. The CLI prints it without a stack and exits 1.
import { defaultPrefix } from '../config/etcd-options'

/** Where a prefix points: `cluster "c"` for the default layout (/podmesh/<c>/), else the prefix itself. */
export function describePrefix (prefix: string): string {
  const cluster = /^\/podmesh\/([^/]+)\/$/.exec(prefix)?.[1]
  return cluster !== undefined && defaultPrefix(cluster) === prefix ? `cluster "${cluster}"` : `prefix "${prefix}"`
}

export class NodeNotFoundError extends Error {
  readonly code = 'ENODENOTFOUND'
  constructor (readonly node: string, readonly prefix: string, detail?: string) {
    super(`no node named "${node}" in ${describePrefix(prefix)}${detail !== undefined ? ` (${detail})` : ''}`)
    this.name = 'NodeNotFoundError'
  }
}
export const isNodeNotFound = (e: unknown): e is NodeNotFoundError => e instanceof NodeNotFoundError

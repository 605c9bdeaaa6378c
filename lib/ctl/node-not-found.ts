// The error of every podmeshctl subcommand that names a node etcd does not know (status, diff,
// node remove): one line for the operator that says which node and which cluster was asked, so
// a typo and a wrong --cluster look different. The CLI prints it without a stack and exits 1.
import { describePrefix } from '../config/etcd-options'

export class NodeNotFoundError extends Error {
  readonly code = 'ENODENOTFOUND'
  constructor (readonly node: string, readonly prefix: string, detail?: string) {
    super(`no node named "${node}" in ${describePrefix(prefix)}${detail !== undefined ? ` (${detail})` : ''}`)
    this.name = 'NodeNotFoundError'
  }
}
export const isNodeNotFound = (e: unknown): e is NodeNotFoundError => e instanceof NodeNotFoundError

// The error of every podmeshctl subcommand that names a service etcd does not hold (endpoints;
// service show and remove): one line naming the service and the cluster (or prefix) asked, so a
// typo and a wrong --cluster look different. The CLI prints it without a stack and exits 1.
import { describePrefix } from '../config/etcd-options'

export class ServiceNotFoundError extends Error {
  readonly code = 'ESERVICENOTFOUND'
  constructor (readonly service: string, readonly prefix: string) {
    super(`no service named "${service}" in ${describePrefix(prefix)}`)
    this.name = 'ServiceNotFoundError'
  }
}
export const isServiceNotFound = (e: unknown): e is ServiceNotFoundError => e instanceof ServiceNotFoundError

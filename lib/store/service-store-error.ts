// The typed refusal of the service store (lib/store/services.ts): what is wrong, for which
// service, and — for a taken cluster IP or NodePort — which service holds it. Callers branch on
// `problem`; podmeshctl prints the message and exits 1.

export type ServiceStoreProblem =
  | 'invalid' // the request itself is malformed (name, ports, selector, policies, an IP that is not one)
  | 'exists' // a service of that name exists
  | 'not-found' // no service of that name
  | 'no-service-range' // the config has no services section, or no range of the requested IP's family
  | 'ip-taken' // a requested cluster IP belongs to another service
  | 'ip-out-of-range' // a requested cluster IP is outside the range, or its network/broadcast address
  | 'ip-exhausted' // every usable address of a service range is taken
  | 'port-taken' // a requested NodePort belongs to another service
  | 'port-out-of-range' // a requested NodePort is outside the NodePort range
  | 'port-exhausted' // every NodePort of the range is taken (for that protocol)
  | 'conflict' // lost the race to concurrent writers too many times in a row
  | 'bad-value' // the stored service cannot be read

export class ServiceStoreError extends Error {
  readonly code = 'ESERVICESTORE'
  readonly problem: ServiceStoreProblem
  readonly service: string
  /** For 'ip-taken' and 'port-taken': the service that holds the IP or port. */
  readonly holder?: string
  constructor (service: string, problem: ServiceStoreProblem, message: string, opts: { holder?: string, cause?: unknown } = {}) {
    super(message, opts.cause !== undefined ? { cause: opts.cause } : undefined)
    this.name = 'ServiceStoreError'
    this.service = service
    this.problem = problem
    if (opts.holder !== undefined) this.holder = opts.holder
  }
}
export const isServiceStoreError = (e: unknown): e is ServiceStoreError => e instanceof ServiceStoreError

// The typed error of subnet leasing and node-record publishing: exhaustion, a requested subnet
// held by someone else, a subnet taken while ours was not held, a lost race that retries did not win.

export type LeaseProblem =
  | 'exhausted' // no free subnet left in the range (or its bounds)
  | 'requestedTaken' // the requested subnet belongs to another node
  | 'requestedInvalid' // the requested subnet is not a subnet of the cluster range
  | 'subnetTaken' // on re-acquire, another node took our subnet while our lease was gone
  | 'conflict' // the claim transaction kept losing races
  | 'closed' // the lease was closed or released

export class LeaseError extends Error {
  readonly code = 'ELEASE'
  readonly problem: LeaseProblem
  readonly node: string
  constructor (node: string, problem: LeaseProblem, message: string, options?: { cause?: unknown }) {
    super(`node ${node}: ${message}`, options)
    this.name = 'LeaseError'
    this.problem = problem
    this.node = node
  }
}

export const isLeaseError = (e: unknown): e is LeaseError => e instanceof LeaseError

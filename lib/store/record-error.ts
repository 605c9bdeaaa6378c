// The typed error for a value read back from etcd that podmesh will not use: a malformed or
// hostile node record or subnet lease. Carries the key; `problem` says what was wrong.

export type RecordProblem =
  | 'key' // malformed key
  | 'tooLarge'
  | 'json'
  | 'type'
  | 'missing'
  | 'unknownField'
  | 'version'
  | 'name'
  | 'generation'
  | 'endpoint'
  | 'publicKey'
  | 'podCIDRs'
  | 'mac'
  | 'mtu'
  | 'location'
  | 'since'
  | 'owner' // claims a subnet that subnets/ says belongs to someone else (or no one)

export class RecordError extends Error {
  readonly code = 'ERECORD'
  readonly key: string
  readonly problem: RecordProblem
  constructor (key: string, problem: RecordProblem, message: string, options?: { cause?: unknown }) {
    super(`${key}: ${message}`, options)
    this.name = 'RecordError'
    this.key = key
    this.problem = problem
  }
}

export const isRecordError = (e: unknown): e is RecordError => e instanceof RecordError

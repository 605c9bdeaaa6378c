// The CNI error a plugin prints on stdout (CNI SPEC 1.0, "Error"): the well-known codes, and the
// one error type the plugin's parsing throws, so the entry point turns any refusal into the JSON
// a runtime reads. Pure.

/** Well-known codes (0-99 are the spec's; 100 and above are this plugin's). */
export const CNI_CODE = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidNetworkConfig: 7,
  tryAgainLater: 11,
  /** CHECK: the pod's report is missing from the spool, or says something else than the pod. */
  reportMismatch: 100
} as const

export class CniError extends Error {
  readonly code: number
  readonly details: string
  constructor (code: number, msg: string, details = '', options?: { cause?: unknown }) {
    super(msg, options)
    this.name = 'CniError'
    this.code = code
    this.details = details
  }

  /** The spec's error object; `cniVersion` is the config's when it could be read. */
  toResult (cniVersion: string): { cniVersion: string, code: number, msg: string, details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details !== '' ? { details: this.details } : {}) }
  }
}
export const isCniError = (e: unknown): e is CniError => e instanceof CniError

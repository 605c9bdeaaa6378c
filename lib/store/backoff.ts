// Exponential backoff as a value: each next() is the delay before the next attempt, growing from
// initialMs by `factor` up to maxMs, with ±jitter so a fleet does not retry in lock step. Pure
// (the random source is injected); the caller owns the timer.

export interface BackoffOptions {
  initialMs?: number
  maxMs?: number
  factor?: number
  /** Fraction of the delay added or removed at random (0.2 = ±20 %). */
  jitter?: number
  random?: () => number
}

export class Backoff {
  private readonly initialMs: number
  private readonly maxMs: number
  private readonly factor: number
  private readonly jitter: number
  private readonly random: () => number
  private base: number

  constructor (o: BackoffOptions = {}) {
    this.initialMs = o.initialMs ?? 100
    this.maxMs = o.maxMs ?? 5000
    this.factor = o.factor ?? 2
    this.jitter = o.jitter ?? 0.2
    this.random = o.random ?? Math.random
    this.base = this.initialMs
  }

  /** The delay to wait now; the following one is longer (up to maxMs). */
  next (): number {
    const d = this.base
    this.base = Math.min(this.maxMs, this.base * this.factor)
    const spread = d * this.jitter * (2 * this.random() - 1)
    return Math.max(0, Math.min(this.maxMs, Math.round(d + spread)))
  }

  /** After a success: start again from initialMs. */
  reset (): void {
    this.base = this.initialMs
  }
}

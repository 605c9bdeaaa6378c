// Whether the reconcile loop is alive, as a value: the part of /readyz that a stuck loop turns
// to 503. The periodic resync guarantees one completed pass per resync interval, so a gap of
// several intervals means passes fail or never finish (a hung kernel call, a stuck `wg`).

import type { Readiness } from './health'

/** How many resync intervals without a completed pass make the node not ready. */
export const STALL_INTERVALS = 3

export interface LoopState {
  /** Epoch ms of the last completed pass; undefined before the first. */
  lastAppliedAt: number | undefined
  consecutiveFailures: number
  /** Passes abandoned at the pass deadline that have not settled yet. */
  abandonedPasses: number
  resyncIntervalMs: number
  now: number
}

/** A not-ready verdict for the loop, or undefined when the loop is healthy. */
export function loopReadiness (s: LoopState): Readiness | undefined {
  const stuck = s.abandonedPasses > 0 ? `; ${s.abandonedPasses} pass(es) abandoned at the deadline still running` : ''
  if (s.consecutiveFailures > 0) return { ready: false, detail: `last ${s.consecutiveFailures} reconcile(s) failed${stuck}` }
  const limit = STALL_INTERVALS * s.resyncIntervalMs
  if (s.lastAppliedAt !== undefined && s.now - s.lastAppliedAt > limit) {
    return { ready: false, detail: `no reconcile pass completed for ${Math.round((s.now - s.lastAppliedAt) / 1000)} s (limit ${Math.round(limit / 1000)} s): the loop is stuck${stuck}` }
  }
  return undefined
}

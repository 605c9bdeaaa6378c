// systemd's watchdog (WatchdogSec=) fed by the reconcile loop itself: WATCHDOG=1 goes out after
// a pass that ended by itself (applied, or failed fast), never from a timer of its own, so a
// loop whose passes hang (abandoned at the deadline, or never reaching it) stops the pings and
// systemd restarts the daemon. A pass that keeps failing fast (a foreign route on a pod subnet)
// is a live loop: a restart would not fix it, so it still pings and /readyz reports it.
// The periodic resync guarantees a pass per resync interval, so WatchdogSec must exceed it
// (docs/operations.md says by how much). Pings are spaced: a storm of passes sends a handful
// of `systemd-notify` processes per watchdog period, not one per pass.

/** Pings per watchdog period at most (systemd's advice is at least two). */
const PINGS_PER_PERIOD = 8

/**
 * The watchdog period systemd asks this process for, from WATCHDOG_USEC (and WATCHDOG_PID, when
 * set, must be this process); undefined when there is none.
 */
export function watchdogPeriodMs (env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = env.WATCHDOG_USEC
  if (usec === undefined || !/^\d+$/.test(usec) || Number(usec) === 0) return undefined
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== String(pid)) return undefined
  return Number(usec) / 1000
}

export class Watchdog {
  private last: number | undefined

  constructor (private readonly periodMs: number, private readonly send: () => void) {}

  /** A pass ended at `now` (epoch ms): ping unless one went out less than period/8 ago. */
  passEnded (now: number): void {
    if (this.last !== undefined && now - this.last < this.periodMs / PINGS_PER_PERIOD) return
    this.last = now
    this.send()
  }
}

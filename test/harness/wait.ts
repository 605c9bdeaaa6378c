// Polling for a condition in tests and labs: one loop, so every harness reports a timeout the
// same way (what was awaited, for how long, the last error the check threw).

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export interface WaitOptions {
  /** Poll interval; default 50 ms. */
  everyMs?: number
  /** A check error for which waiting longer cannot help: rethrown at once. */
  stopOn?: (e: unknown) => boolean
  /** Builds the timeout error (a harness's own error type); default Error. */
  timeoutError?: (message: string) => Error
}

/**
 * Polls `check` until it yields something other than false/undefined and resolves to that; a
 * check that throws counts as not yet (its last error goes into the timeout message).
 */
export async function waitForValue<T> (what: string, timeoutMs: number, check: () => Promise<T | undefined | false>, o: WaitOptions = {}): Promise<T> {
  const t0 = Date.now()
  let last: unknown
  while (Date.now() - t0 < timeoutMs) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v
    } catch (e) {
      if (o.stopOn?.(e) === true) throw e
      last = e
    }
    await sleep(o.everyMs ?? 50)
  }
  const message = `${what}: not within ${timeoutMs} ms${last !== undefined ? ` (last error: ${(last as Error).message})` : ''}`
  throw (o.timeoutError ?? (m => new Error(m)))(message)
}

/** Polls `check` until it is true; resolves to the milliseconds that took. */
export async function waitFor (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now()
  await waitForValue(what, timeoutMs, async () => await check())
  return Date.now() - t0
}

// The daemon's one pino logger. Secrets are redacted by key name at any depth (pino's own
// `redact` paths match fixed depths only, so an options object nested one level further, or
// an etcd client config inside an error context, would slip through).

import pino, { type DestinationStream, type Logger } from 'pino'

/** Keys whose values never reach a log line. */
const SECRET_KEY = /passw(or)?d|secret|token|privatekey|presharedkey|^etcdkey$|^credentials?$/i
const MAX_DEPTH = 10

/**
 * A copy of `value` with the value of every secret-named key replaced, in plain objects and
 * arrays at any depth (below MAX_DEPTH everything is replaced: a log line that deep is a bug).
 * Errors and other class instances pass through for pino's serializers.
 */
export function redactSecrets (value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value
  if (depth > MAX_DEPTH) return '[too deep]'
  if (Array.isArray(value)) return value.map(v => redactSecrets(v, depth + 1))
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== undefined ? '[redacted]' : redactSecrets(v, depth + 1)
  return out
}

export function createLogger (opts: { level: string, nodeName: string }, destination?: DestinationStream): Logger {
  const options = {
    level: opts.level,
    base: { component: 'podmeshd', node: opts.nodeName },
    formatters: { log: (o: Record<string, unknown>) => redactSecrets(o) as Record<string, unknown> }
  }
  return destination === undefined ? pino(options) : pino(options, destination)
}

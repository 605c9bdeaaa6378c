// podmeshctl's global flags: the etcd flags from the one table podmeshd also uses
// (lib/config/etcd-flags.ts), plus -o/--output and -h/--help. Gives the util.parseArgs options,
// the help lines, and the etcd options resolved by the one validator. Pure.
import { ETCD_FIELDS, ETCD_FLAGS, type EtcdField } from '../config/etcd-flags'
import { type EtcdOptions, resolveEtcdOptions } from '../config/etcd-options'

type ArgOption = { type: 'string' | 'boolean', short?: string }

const etcdArgOptions: Record<string, ArgOption> = Object.fromEntries(ETCD_FIELDS.map(f => [ETCD_FLAGS[f].flag, { type: 'string' }]))

export const globalOptions: Record<string, ArgOption> = {
  ...etcdArgOptions,
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' }
}

/** The "global flags" part of `podmeshctl --help`. */
export function globalFlagsHelp (): string {
  const line = (left: string, text: string): string => `  ${left.padEnd(23)} ${text}`
  const lines = ['global flags (environment variable in brackets):']
  for (const f of ETCD_FIELDS) {
    const s = ETCD_FLAGS[f]
    const def = 'default' in s ? ` (default ${s.default})` : ''
    lines.push(line(`--${s.flag} ${s.arg}`, `${s.help} [${s.env}]${def}`))
  }
  lines.push(line('-o, --output json|table', 'output format (default table; topology also takes dot)'))
  return lines.join('\n') + '\n'
}

/** The etcd options from parsed flags over the environment; a ConfigError names the flag. */
export function etcdOptionsOfFlags (values: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): EtcdOptions {
  const input: Partial<Record<EtcdField, unknown>> = {}
  for (const f of ETCD_FIELDS) input[f] = values[ETCD_FLAGS[f].flag]
  return resolveEtcdOptions(input, env)
}

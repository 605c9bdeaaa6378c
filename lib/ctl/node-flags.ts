// The node-local flags of podmeshctl diff and doctor, from the table podmeshd uses
// (lib/config/node-flags.ts): parseArgs options, help lines, and the values taken from the flag
// or else its PODMESH_* variable, checked by the one rule. Pure.
import { NODE_FLAGS, type NodeField, checkNodeFlag } from '../config/node-flags'

type ArgOption = { type: 'string' }

export const nodeArgOptions = (fields: readonly NodeField[]): Record<string, ArgOption> =>
  Object.fromEntries(fields.map(f => [NODE_FLAGS[f].flag, { type: 'string' }]))

/** Usage lines, indented under a command's own line. */
export function nodeFlagsHelp (fields: readonly NodeField[]): string {
  return fields.map(f => {
    const s: { flag: string, arg: string, help: string, env: string, default?: string } = NODE_FLAGS[f]
    const def = s.default !== undefined ? ` (default ${s.default})` : ''
    return `  ${`--${s.flag} ${s.arg}`.padEnd(25)} ${s.help} [${s.env}]${def}\n`
  }).join('')
}

/** The given fields from parsed flags over the environment; a ConfigError names the flag. */
export function nodeFlagValues (fields: readonly NodeField[], values: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): Partial<Record<NodeField, string>> {
  const out: Partial<Record<NodeField, string>> = {}
  for (const f of fields) {
    const flag = values[NODE_FLAGS[f].flag]
    const v = typeof flag === 'string' ? flag : env[NODE_FLAGS[f].env]
    if (v !== undefined) out[f] = checkNodeFlag(f, v)
  }
  return out
}

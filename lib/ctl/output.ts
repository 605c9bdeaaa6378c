// Rendering of podmeshctl results: JSON (stable, for scripts) or an aligned text table (for
// people). Pure; every subcommand returns plain data and lets this file print it.

export type OutputFormat = 'json' | 'table'

/** Left-aligned columns separated by two spaces; the first row is the header. */
export function formatTable (rows: string[][]): string {
  const widths: number[] = []
  for (const r of rows) r.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, c.length) })
  return rows.map(r => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n'
}

/** Nested object → [dotted path, value text] rows, in key order. */
export function flatten (value: unknown, path = ''): Array<[string, string]> {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) => flatten(v, path === '' ? k : `${path}.${k}`))
  }
  return [[path, Array.isArray(value) ? value.join(',') : String(value)]]
}

export const formatJson = (value: unknown): string => JSON.stringify(value, null, 2) + '\n'

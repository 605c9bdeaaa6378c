// How every benchmark reports: one table for people, one JSON document with --json for machines.
// A row carries its floor and target so that a reader sees the comparison in the same run;
// nothing here fails on a timing (benchmarks are not tests). A smoke run says so in its context.
import { SMOKE } from './smoke'

export interface Row {
  metric: string
  value: number
  unit: string
  /** The physical floor measured in the same run, same unit. */
  floor?: number
  /** The target from issue #6, same unit; `met` is value ≤ target (or ≥ for 'min' targets). */
  target?: number
  targetKind?: 'max' | 'min'
  note?: string
}

export const wantsJson = (): boolean => process.argv.includes('--json')

const fmt = (n: number | undefined): string =>
  n === undefined ? '' : Number.isInteger(n) ? String(n) : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)

export function met (r: Row): boolean | undefined {
  if (r.target === undefined) return undefined
  return r.targetKind === 'min' ? r.value >= r.target : r.value <= r.target
}

export function printReport (bench: string, rows: readonly Row[], givenContext: Record<string, unknown> = {}): void {
  const context = SMOKE ? { ...givenContext, smoke: true } : givenContext
  if (wantsJson()) {
    process.stdout.write(JSON.stringify({ bench, context, rows: rows.map(r => ({ ...r, met: met(r) })) }, null, 2) + '\n')
    return
  }
  const head = ['metric', 'value', 'unit', 'floor', 'x floor', 'target', 'met', 'note']
  const body = rows.map(r => {
    const m = met(r)
    return [r.metric, fmt(r.value), r.unit, fmt(r.floor),
      r.floor !== undefined && r.floor > 0 ? `${(r.value / r.floor).toFixed(2)}x` : '',
      r.target === undefined ? '' : `${r.targetKind === 'min' ? '>=' : '<='} ${fmt(r.target)}`,
      m === undefined ? '' : m ? 'yes' : 'NO', r.note ?? '']
  })
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => (b[i] ?? '').length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  process.stdout.write(`\n${bench}  ${Object.entries(context).map(([k, v]) => `${k}=${String(v)}`).join(' ')}\n`)
  process.stdout.write(line(head) + '\n' + line(widths.map(w => '-'.repeat(w))) + '\n')
  for (const b of body) process.stdout.write(line(b) + '\n')
}

/** Percentile (nearest rank) of a sample; NaN for an empty one. */
export function percentile (xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number
}

export const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6
export const now = (): bigint => process.hrtime.bigint()

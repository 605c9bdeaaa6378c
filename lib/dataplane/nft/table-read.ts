// The kernel's service table as `podmeshctl diff` compares it (lib/service/table-summary.ts):
// `nft -j list table inet podmesh` read into chains with their rule counts, set names, every
// map's elements with what each maps to (a chain, an endpoint) and set elements (with ''). The
// JSON is nft's (libnftables' schema 1); what does not have the shape podmesh writes is an error
// naming the object, never skipped silently.
import { listServiceTable } from './apply'
import type { TableSummary } from '../../service/table-summary'

export class TableReadError extends Error {
  readonly code = 'ENFTTABLE'
  constructor (message: string) { super(`table inet podmesh: ${message}`); this.name = 'TableReadError' }
}

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

/** An element key as render.ts writes it: concatenated parts joined by " . ". */
function keyText (k: unknown, map: string): string {
  // An element with a timeout (a dynamic affinity set's client) comes wrapped: {"elem": {"val": …, "expires": …}}.
  if (isObject(k) && isObject(k.elem) && 'val' in k.elem) return keyText(k.elem.val, map)
  if (typeof k === 'string' || typeof k === 'number') return String(k)
  if (isObject(k) && Array.isArray(k.concat) && k.concat.every(p => typeof p === 'string' || typeof p === 'number')) return k.concat.join(' . ')
  throw new TableReadError(`map ${map}: an element key of unknown shape: ${JSON.stringify(k)}`)
}

/** What an element maps to: a verdict's chain, or data (an endpoint's address and port) as render.ts writes it. */
function valueText (v: unknown, map: string): string {
  const go = isObject(v) ? (v.goto ?? v.jump) : undefined
  if (isObject(go) && typeof go.target === 'string') return go.target
  if (isObject(v) && Array.isArray(v.concat) && v.concat.every(p => typeof p === 'string' || typeof p === 'number')) return v.concat.join(' . ')
  throw new TableReadError(`map ${map}: an element value of unknown shape: ${JSON.stringify(v)}`)
}

/** The summary of the `nftables` array of `nft -j list table inet podmesh`. Pure. */
export function summarizeTable (objects: readonly unknown[]): TableSummary {
  const chains = new Map<string, number>()
  const sets = new Set<string>()
  const elements = new Map<string, Map<string, string>>()
  for (const o of objects) {
    if (!isObject(o)) continue
    if (isObject(o.chain) && typeof o.chain.name === 'string') {
      if (!chains.has(o.chain.name)) chains.set(o.chain.name, 0)
    } else if (isObject(o.rule) && typeof o.rule.chain === 'string') {
      chains.set(o.rule.chain, (chains.get(o.rule.chain) ?? 0) + 1)
    } else if (isObject(o.set) && typeof o.set.name === 'string') {
      const name = o.set.name
      sets.add(name)
      // nft leaves `elem` out of an empty set.
      elements.set(name, new Map((Array.isArray(o.set.elem) ? o.set.elem : []).map(e => [keyText(e, name), ''])))
    } else if (isObject(o.map) && typeof o.map.name === 'string') {
      const name = o.map.name
      const elems = new Map<string, string>()
      for (const e of Array.isArray(o.map.elem) ? o.map.elem : []) {
        if (!Array.isArray(e) || e.length !== 2) throw new TableReadError(`map ${name}: an element of unknown shape: ${JSON.stringify(e)}`)
        elems.set(keyText(e[0], name), valueText(e[1], name))
      }
      elements.set(name, elems)
    }
  }
  return { chains, sets, elements }
}

/** The kernel's table, summarized; undefined when it does not exist. */
export async function readServiceTable (): Promise<TableSummary | undefined> {
  const objects = await listServiceTable()
  return objects === undefined ? undefined : summarizeTable(objects)
}

// Label selectors as operators write them (`app=web,tier=front`) and as pods carry labels:
// parsing with a message that names the fault, matching, and the canonical text. Equality only,
// as a Service's selector is in Kubernetes. Pure.

import type { Selector } from './types'

export class SelectorError extends Error {
  readonly code = 'ESELECTOR'
  constructor (message: string) {
    super(message)
    this.name = 'SelectorError'
  }
}
export const isSelectorError = (e: unknown): e is SelectorError => e instanceof SelectorError

/** A label key: an optional DNS-subdomain prefix and "/", then a name of 1–63 characters (Kubernetes' rule). */
const KEY = /^(?:[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/
/** A label value: empty, or 1–63 characters, alphanumeric at both ends. */
const VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/

export const validLabelKey = (k: string): boolean => KEY.test(k)
export const validLabelValue = (v: string): boolean => VALUE.test(v)

/** Parses `key=value[,key=value…]`; a repeated key, an empty pair or a bad key or value is refused. */
export function parseSelector (text: string): Selector {
  if (text.trim() === '') throw new SelectorError('selector is empty: give at least one key=value')
  const out: Record<string, string> = {}
  for (const raw of text.split(',')) {
    const pair = raw.trim()
    const eq = pair.indexOf('=')
    if (eq < 0) throw new SelectorError(`selector "${text}": "${pair}" is not key=value`)
    const key = pair.slice(0, eq).trim()
    const value = pair.slice(eq + 1).replace(/^=/, '').trim()
    if (!validLabelKey(key)) throw new SelectorError(`selector "${text}": "${key}" is not a valid label key`)
    if (!validLabelValue(value)) throw new SelectorError(`selector "${text}": "${value}" is not a valid label value for ${key}`)
    if (Object.hasOwn(out, key)) throw new SelectorError(`selector "${text}": key ${key} given twice`)
    out[key] = value
  }
  return out
}

/** Whether `labels` carry every pair of `selector`. An empty selector matches nothing (a service without one has no endpoints). */
export function selects (selector: Selector, labels: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(selector)
  return keys.length > 0 && keys.every(k => Object.hasOwn(labels, k) && labels[k] === selector[k])
}

/** The canonical text of a selector: pairs sorted by key. */
export function selectorText (selector: Selector): string {
  return Object.keys(selector).sort().map(k => `${k}=${selector[k] as string}`).join(',')
}

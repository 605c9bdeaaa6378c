// The read every lister of untrusted values shares (pods/, services/): one snapshot of a folder,
// read in pages, each key and value checked by the caller's parsers. A bad key (KeyError) or value
// (ServiceValueError) is handed to `onBad` and skipped, so one hostile value never hides the
// rest; any other error is a bug of ours, not a bad value, and must not pass for one.
import { type ServiceValueError, isServiceValueError } from '../service/service-value'
import type { StoreClient } from './client'
import { type KeyError, isKeyError } from './keys'
import { rangePages } from './paged-range'

/** What a reader is told of a key or value it skipped. */
export type BadValue = (key: string, error: KeyError | ServiceValueError) => void

export interface ValueReader<K, V> {
  /** Values per page: a page must stay within etcd's response limit (4 MiB). */
  pageLimit: number
  /** What the key names (throws KeyError for a key no writer makes). */
  parseKey: (key: string) => K
  /** The validated value (throws ServiceValueError). */
  parseValue: (key: string, named: K, text: string) => V
}

/** Every valid value under `folder`, in key order, read at one revision. */
export async function listValid<K, V> (client: StoreClient, folder: string, reader: ValueReader<K, V>, onBad: BadValue): Promise<V[]> {
  return (await listValidEntries(client, folder, reader, onBad)).map(([, v]) => v)
}

/** The same, with each value's key, read at `revision` when given (else the current one). */
export async function listValidEntries<K, V> (client: StoreClient, folder: string, reader: ValueReader<K, V>, onBad: BadValue, revision?: string): Promise<Array<[string, V]>> {
  const out: Array<[string, V]> = []
  for await (const page of rangePages(client, folder, { limit: reader.pageLimit, ...(revision !== undefined ? { revision } : {}) })) {
    for (const kv of page.kvs) {
      const key = kv.key.toString()
      const v = parseValid(reader, key, kv.value.toString(), onBad)
      if (v !== undefined) out.push([key, v])
    }
  }
  return out
}

/** One key and value through the reader's parsers; a bad one goes to `onBad` and gives undefined. */
export function parseValid<K, V> (reader: ValueReader<K, V>, key: string, text: string, onBad: BadValue): V | undefined {
  try {
    return reader.parseValue(key, reader.parseKey(key), text)
  } catch (e) {
    if (!isKeyError(e) && !isServiceValueError(e)) throw e
    onBad(key, e)
    return undefined
  }
}

// pods/<node>/<container id>: the pods each node's CNI plugin reported, as its podmeshd publishes
// them on the node's lease. The list every reader uses: one snapshot, read in pages, each value
// validated; a bad key or value is handed to `onBad` and skipped, so one hostile value never
// hides the rest. The keys themselves are service-keys.ts's.
import { isServiceValueError, parsePodValue, type ServiceValueError } from '../service/service-value'
import type { PodRecord } from '../service/types'
import type { StoreClient } from './client'
import { type KeyError, isKeyError } from './keys'
import { rangePages } from './paged-range'
import { parsePodKey, podsPrefix } from './service-keys'

/** Values per page: at most 16 KiB each (MAX_POD_VALUE_BYTES), so a page stays within 4 MiB. */
export const POD_LIST_PAGE = 256

/** What a reader is told of a key or value it skipped. */
export type BadValue = (key: string, error: KeyError | ServiceValueError) => void

/** Every valid pod record, in key order (node, then container ID), read at one revision. */
export async function listPods (client: StoreClient, prefix: string, onBad: BadValue): Promise<PodRecord[]> {
  const out: PodRecord[] = []
  for await (const page of rangePages(client, podsPrefix(prefix), { limit: POD_LIST_PAGE })) {
    for (const kv of page.kvs) {
      const key = kv.key.toString()
      let where: { node: string, id: string }
      try {
        where = parsePodKey(prefix, key)
      } catch (e) {
        if (!isKeyError(e)) throw e
        onBad(key, e)
        continue
      }
      try {
        out.push(parsePodValue(key, where.node, where.id, kv.value.toString()))
      } catch (e) {
        // Anything else is a bug of ours, not a bad value: it must not pass for one.
        if (!isServiceValueError(e)) throw e
        onBad(key, e)
      }
    }
  }
  return out
}

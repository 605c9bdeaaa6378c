// pods/<node>/<container id>: the pods each node's CNI plugin reported, as its podmeshd publishes
// them on the node's lease. The list every reader uses: one snapshot, read in pages, each value
// validated (value-list.ts); a bad key or value is handed to `onBad` and skipped, so one hostile
// value never hides the rest. The keys themselves are service-keys.ts's.
import { parsePodValue } from '../service/service-value'
import type { PodRecord } from '../service/types'
import type { StoreClient } from './client'
import { parsePodKey, podsPrefix } from './service-keys'
import { type BadValue, type ValueReader, listValid } from './value-list'

/** Values per page: at most 16 KiB each (MAX_POD_VALUE_BYTES), so a page stays within 4 MiB. */
export const POD_LIST_PAGE = 256

/** Every valid pod record, in key order (node, then container ID), read at one revision. */
export async function listPods (client: StoreClient, prefix: string, onBad: BadValue): Promise<PodRecord[]> {
  return await listValid(client, podsPrefix(prefix), podReader(prefix), onBad)
}

/** How a pods/ key and value are read and checked (the list above, and the daemon's watch). */
export const podReader = (prefix: string): ValueReader<{ node: string, id: string }, PodRecord> => ({
  pageLimit: POD_LIST_PAGE,
  parseKey: key => parsePodKey(prefix, key),
  parseValue: (key, { node, id }, text) => parsePodValue(key, node, id, text)
})

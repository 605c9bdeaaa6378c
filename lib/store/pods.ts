// pods/<node>/<container id>: the pods each node's CNI plugin reported, as its podmeshd publishes
// them on the node's lease. Key builders (a name that cannot be a key part is refused, never
// escaped) and the list every reader uses: one snapshot, read in pages, each value validated; a
// bad key or value is handed to `onBad` and skipped, so one hostile value never hides the rest.
import { isServiceValueError, parsePodValue, type ServiceValueError } from '../service/service-value'
import { CONTAINER_ID_RULE, isContainerId } from '../service/names'
import type { PodRecord } from '../service/types'
import type { StoreClient } from './client'
import { KeyError, isKeyError, NODE_NAME_RULE, isNodeName } from './keys'
import { rangePages } from './paged-range'

/** Values per page: at most 16 KiB each (MAX_POD_VALUE_BYTES), so a page stays within 4 MiB. */
export const POD_LIST_PAGE = 256

/** What a reader is told of a key or value it skipped. */
export type BadValue = (key: string, error: KeyError | ServiceValueError) => void

export const podsPrefix = (prefix: string): string => `${prefix}pods/`

/** The folder of one node's pods (what its lease holds and `node remove` deletes). */
export function nodePodsPrefix (prefix: string, node: string): string {
  const folder = `${podsPrefix(prefix)}${node}/`
  if (!isNodeName(node)) throw new KeyError(folder, `"${node}" is not a valid node name (${NODE_NAME_RULE})`)
  return folder
}

export function podKey (prefix: string, node: string, id: string): string {
  const key = `${podsPrefix(prefix)}${node}/${id}`
  if (!isNodeName(node)) throw new KeyError(key, `"${node}" is not a valid node name (${NODE_NAME_RULE})`)
  if (!isContainerId(id)) throw new KeyError(key, `"${id}" is not a valid container ID (${CONTAINER_ID_RULE})`)
  return key
}

/** The node and container ID of a pods/ key. */
export function parsePodKey (prefix: string, key: string): { node: string, id: string } {
  const folder = podsPrefix(prefix)
  if (!key.startsWith(folder)) throw new KeyError(key, `not under ${folder}`)
  const parts = key.slice(folder.length).split('/')
  if (parts.length !== 2) throw new KeyError(key, 'a pod key is pods/<node>/<container id>')
  const [node = '', id = ''] = parts
  if (!isNodeName(node)) throw new KeyError(key, `"${node}" is not a valid node name`)
  if (!isContainerId(id)) throw new KeyError(key, `"${id}" is not a valid container ID`)
  return { node, id }
}

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

// What to write so that pods/<node>/ says what the node's spool says: put every report whose key
// is missing, holds another value, or hangs on another lease (an old one, after a restart); delete
// every other key under the node's directory (a pod gone, or a key no report names). Pure.
import type { StoredPod } from '../store/node-pods'

export interface PodKeysPlan {
  put: Array<{ id: string, value: string }>
  del: string[]
}

/** `desired`: container ID → the PodRecord text; `stored`: what etcd holds under pods/<node>/. */
export function planPodKeys (desired: ReadonlyMap<string, string>, stored: ReadonlyMap<string, StoredPod>, leaseId: string): PodKeysPlan {
  const put: PodKeysPlan['put'] = []
  for (const [id, value] of desired) {
    const s = stored.get(id)
    if (s === undefined || s.value !== value || s.lease !== leaseId) put.push({ id, value })
  }
  const del = [...stored.keys()].filter(id => !desired.has(id)).sort()
  return { put, del }
}

export const planEmpty = (p: PodKeysPlan): boolean => p.put.length === 0 && p.del.length === 0

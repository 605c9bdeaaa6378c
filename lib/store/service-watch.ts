// What a node's service rules are made of changes under two folders: services/ (what the
// operator wants) and pods/ (what the nodes' CNI plugins report). The daemon reads both whole and
// watches both from the revision it read at (service-inputs.ts folds each change in). Both
// watches share one end: the first to end (stopped, compacted, failed) ends the other.
import type { StoreClient } from './client'
import { storeCall } from './client'
import { prefixEnd } from './keys'
import { type PrefixEvent, watchPrefix } from './prefix-watch'
import { podsPrefix, servicesPrefix } from './service-keys'

/** etcd's current revision (a count-only read of services/: a linearizable read, no values). */
export async function currentRevision (client: StoreClient, prefix: string): Promise<bigint> {
  const key = servicesPrefix(prefix)
  const res = await storeCall(`read the revision of ${key}`, async () => await client.kv.range({ key: Buffer.from(key), range_end: prefixEnd(key), count_only: true }))
  return BigInt(res.header.revision)
}

export interface ServiceInputWatch {
  /** The first revision to report: the revision of the read plus one. */
  fromRevision: bigint
  signal: AbortSignal
  onChange: (revision: bigint, events: readonly PrefixEvent[]) => void
}

/** Watches services/ and pods/ until the signal aborts ('stopped'), etcd compacted past the start ('compacted'), or a watch fails (throws its StoreError). */
export async function watchServiceInputs (client: StoreClient, prefix: string, o: ServiceInputWatch): Promise<'stopped' | 'compacted'> {
  const both = new AbortController()
  const abort = (): void => both.abort()
  o.signal.addEventListener('abort', abort)
  if (o.signal.aborted) both.abort()
  const watches = [servicesPrefix(prefix), podsPrefix(prefix)].map(async p => await watchPrefix(client, { prefix: p, fromRevision: o.fromRevision, signal: both.signal, onChange: o.onChange }))
  try {
    return await Promise.race(watches)
  } finally {
    both.abort()
    o.signal.removeEventListener('abort', abort)
    await Promise.allSettled(watches)
  }
}

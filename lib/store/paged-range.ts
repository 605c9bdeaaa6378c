// A prefix read in pages, all at one revision: bounded memory for any number of keys. etcd
// (3.4) has no per-value size filter and no value sizes in a keys-only read, so the bound is
// per page: at most `limit` values, each at most etcd's --max-request-bytes (1.5 MiB default).
// Every page after the first reads at the first page's revision, so the pages together are one
// consistent snapshot; a revision compacted meanwhile fails the read (the caller lists again).

import type { IKeyValue, IResponseHeader } from 'etcd3'
import { type StoreClient, storeCall } from './client'
import { prefixEnd } from './keys'

export interface RangePage {
  header: IResponseHeader
  kvs: IKeyValue[]
}

/**
 * Pages of the keys under `prefix`, in key order, `limit` at a time, read at `revision` (or at
 * the newest revision when undefined: then the first page's header says which).
 */
export async function * rangePages (client: StoreClient, prefix: string, opts: { limit: number, revision?: string }): AsyncGenerator<RangePage> {
  const end = prefixEnd(prefix)
  let start = Buffer.from(prefix)
  let revision = opts.revision
  for (;;) {
    const from = start
    const at = revision
    const res = await storeCall(`list ${prefix}`, async () => await client.kv.range({
      key: from, range_end: end, limit: opts.limit, ...(at !== undefined ? { revision: at } : {})
    }))
    revision ??= res.header.revision
    yield { header: res.header, kvs: res.kvs }
    const last = res.kvs.at(-1)
    if (!res.more || last === undefined) return
    // The smallest key after the last one.
    start = Buffer.concat([last.key, Buffer.from([0])])
  }
}

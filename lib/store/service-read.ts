// services/<name> as its readers see it (podmeshd's rules, `podmeshctl endpoints`): one service
// read, and the list of all, each value validated (the keys are service-keys.ts's). Writing
// services (with their serviceips/ and nodeports/ claims) is the service store's job, not this
// file's. A bad key or value in the list is handed to `onBad` and skipped.
import { isServiceValueError, parseServiceValue } from '../service/service-value'
import type { ServiceSpec } from '../service/types'
import { type StoreClient, storeCall } from './client'
import { isKeyError } from './keys'
import { rangePages } from './paged-range'
import type { BadValue } from './pods'
import { parseServiceKey, serviceKey, servicesPrefix } from './service-keys'

/** Values per page: at most 64 KiB each (MAX_SERVICE_VALUE_BYTES), so a page stays within 4 MiB. */
export const SERVICE_LIST_PAGE = 64

/** One service, or undefined when there is none; a bad value throws its ServiceValueError. */
export async function readService (client: StoreClient, prefix: string, name: string): Promise<ServiceSpec | undefined> {
  const key = serviceKey(prefix, name)
  const text = await storeCall(`get ${key}`, async () => await client.get(key).string())
  return text === null ? undefined : parseServiceValue(key, name, text)
}

/** Every valid service, in name order, read at one revision. */
export async function listServices (client: StoreClient, prefix: string, onBad: BadValue): Promise<ServiceSpec[]> {
  const out: ServiceSpec[] = []
  for await (const page of rangePages(client, servicesPrefix(prefix), { limit: SERVICE_LIST_PAGE })) {
    for (const kv of page.kvs) {
      const key = kv.key.toString()
      let name: string
      try {
        name = parseServiceKey(prefix, key)
      } catch (e) {
        if (!isKeyError(e)) throw e
        onBad(key, e)
        continue
      }
      try {
        out.push(parseServiceValue(key, name, kv.value.toString()))
      } catch (e) {
        // Anything else is a bug of ours, not a bad value: it must not pass for one.
        if (!isServiceValueError(e)) throw e
        onBad(key, e)
      }
    }
  }
  return out
}

// services/<name> as its readers see it (podmeshd's rules, every podmeshctl command): one service
// read, and the list of all, each value validated by parseServiceValue. Writing services (with
// their serviceips/ and nodeports/ claims) is services.ts's job, not this file's. A bad key or
// value in the list is handed to `onBad` and skipped.
import { describePrefix } from '../config/etcd-options'
import { isServiceValueError, parseServiceValue } from '../service/service-value'
import type { ServiceSpec } from '../service/types'
import { type StoreClient, storeCall } from './client'
import { isKeyError } from './keys'
import { parseServiceKey, serviceKey, servicesPrefix } from './service-keys'
import { ServiceStoreError } from './service-store-error'
import { type BadValue, type ValueReader, listValid } from './value-list'

/** Values per page: at most 64 KiB each (MAX_SERVICE_VALUE_BYTES), so a page stays within 4 MiB. */
export const SERVICE_LIST_PAGE = 64

/** One service, or undefined when there is none; a bad value throws its ServiceValueError, a bad name a KeyError. */
export async function readService (client: StoreClient, prefix: string, name: string): Promise<ServiceSpec | undefined> {
  const key = serviceKey(prefix, name)
  const text = await storeCall(`get ${key}`, async () => await client.get(key).string())
  return text === null ? undefined : parseServiceValue(key, name, text)
}

/**
 * One service for a command that names it: ServiceStoreError 'not-found' (naming the cluster, so
 * a typo and a wrong --cluster look different) when etcd holds none, 'bad-value' when it holds
 * one no reader accepts, 'invalid' for a name no service can have.
 */
export async function getService (client: StoreClient, prefix: string, name: string): Promise<ServiceSpec> {
  let spec: ServiceSpec | undefined
  try {
    spec = await readService(client, prefix, name)
  } catch (e) {
    if (isKeyError(e)) throw new ServiceStoreError(name, 'invalid', e.message, { cause: e })
    if (isServiceValueError(e)) throw new ServiceStoreError(name, 'bad-value', e.message, { cause: e })
    throw e
  }
  if (spec === undefined) throw serviceNotFound(name, prefix)
  return spec
}

/** The one "no such service" of the store and podmeshctl (show, remove, endpoints). */
export const serviceNotFound = (name: string, prefix: string): ServiceStoreError =>
  new ServiceStoreError(name, 'not-found', `no service named "${name}" in ${describePrefix(prefix)}`)

/** Every valid service, in name order, read at one revision. */
export async function listServices (client: StoreClient, prefix: string, onBad: BadValue): Promise<ServiceSpec[]> {
  return await listValid(client, servicesPrefix(prefix), serviceReader(prefix), onBad)
}

/** How a services/ key and value are read and checked (the list above, and the daemon's watch). */
export const serviceReader = (prefix: string): ValueReader<string, ServiceSpec> => ({
  pageLimit: SERVICE_LIST_PAGE,
  parseKey: key => parseServiceKey(prefix, key),
  parseValue: parseServiceValue
})

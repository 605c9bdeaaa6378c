// Small fixtures for store tests against a real etcd: a client closed at teardown, temp state
// dirs, node record fields, polling for a condition.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveEtcdOptions } from '../../lib/config/etcd-options'
import { type ConnectOptions, type StoreClient, connectStore } from '../../lib/store/client'
import type { RecordFields } from '../../lib/store/node-lease'
import type { Teardownable } from './etcd'

export async function testClient (t: Teardownable, endpoints: string[], extra: ConnectOptions = {}): Promise<StoreClient> {
  const c = await connectStore(resolveEtcdOptions({ endpoints: endpoints.join(',') }), extra)
  t.teardown(() => c.close())
  return c
}

export async function tempDir (t: Teardownable, name = 'state'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `podmesh-${name}-`))
  t.teardown(async () => await rm(d, { recursive: true, force: true }))
  return d
}

/** A WireGuard-looking public key unique to `i`. */
export const testKey = (i: number): string => {
  const b = Buffer.alloc(32)
  b.writeUInt32BE(i + 1)
  return b.toString('base64')
}

export const fields = (i: number): RecordFields => ({
  endpoint: `192.0.2.${(i % 250) + 1}:51820`,
  publicKey: testKey(i),
  mtu: 1420
})

export async function waitFor (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** Every key/value under a prefix, as strings. */
export async function dump (client: StoreClient, prefix: string): Promise<Map<string, string>> {
  const kvs = await client.getAll().prefix(prefix).strings()
  return new Map(Object.entries(kvs))
}

// status/<name>: what a node observes (per-peer handshake age, bytes, applied generation), on its
// own short lease so a dead node's status vanishes within seconds. The value is the caller's JSON
// object, stamped with "v": 1. Library code: failures are returned or emitted, never logged.
import { EventEmitter } from 'node:events'
import type { Lease } from 'etcd3'
import { type StoreClient, type StoreError, storeCall, storeError } from './client'
import { statusKey } from './keys'

export const DEFAULT_STATUS_TTL = 30

export interface StatusPublisherEvents {
  /** The status lease was lost; the next update() writes on a new one. */
  lost: [StoreError]
}

export class StatusPublisher extends EventEmitter<StatusPublisherEvents> {
  readonly key: string
  private readonly client: StoreClient
  private readonly ttl: number
  private lease: Lease | undefined
  private closed = false
  private queue: Promise<unknown> = Promise.resolve()

  constructor (client: StoreClient, prefix: string, name: string, ttlSeconds = DEFAULT_STATUS_TTL) {
    super()
    this.client = client
    this.key = statusKey(prefix, name)
    this.ttl = ttlSeconds
  }

  /** Writes the status (replacing the previous one); grants a lease first when needed. */
  async update (value: object): Promise<void> {
    const text = JSON.stringify({ v: 1, ...value })
    const run = async (): Promise<void> => {
      if (this.closed) return
      const lease = this.lease ?? this.grant()
      this.lease = lease
      try {
        const id = await lease.grant()
        await this.client.kv.put({ key: Buffer.from(this.key), value: Buffer.from(text), lease: id })
      } catch (e) {
        // Next update starts on a fresh lease (the failure may have been the lease itself).
        this.drop(lease)
        throw storeError(`put ${this.key}`, e)
      }
    }
    const p = this.queue.then(run, run)
    this.queue = p.catch(() => {})
    await p
  }

  /** Revokes the lease: the status disappears at once (a stopped node observes nothing). */
  async close (): Promise<void> {
    this.closed = true
    await this.queue
    const lease = this.lease
    this.lease = undefined
    if (lease !== undefined) {
      lease.removeAllListeners()
      await storeCall(`revoke status lease of ${this.key}`, async () => await lease.revoke())
    }
  }

  private grant (): Lease {
    const lease = this.client.lease(this.ttl)
    lease.on('lost', err => {
      if (this.lease !== lease) return
      this.drop(lease)
      this.emit('lost', storeError(`status lease of ${this.key}`, err))
    })
    return lease
  }

  private drop (lease: Lease): void {
    if (this.lease === lease) this.lease = undefined
    lease.removeAllListeners()
    lease.release()
  }
}

/** Publishes a first status value and returns the publisher that keeps it alive. */
export async function publishStatus (client: StoreClient, prefix: string, name: string, value: object, ttlSeconds = DEFAULT_STATUS_TTL): Promise<StatusPublisher> {
  const p = new StatusPublisher(client, prefix, name, ttlSeconds)
  await p.update(value)
  return p
}

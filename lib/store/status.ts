// status/<name>: what a node observes (per-peer handshake age, bytes, applied generation), on its
// own short lease so a dead node's status vanishes within seconds. The value is the caller's JSON
// object, stamped with "v": 1. Library code: failures are returned or emitted, never logged.
import { EventEmitter } from 'node:events'
import { type StoreClient, type StoreError, storeCall, storeError } from './client'
import { LeaseKeeper } from './lease-keeper'
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
  private lease: LeaseKeeper | undefined
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
      let lease = this.lease
      try {
        if (lease === undefined) {
          lease = this.keeper()
          await lease.grant()
          this.lease = lease
        }
        const id = lease.id
        await storeCall(`put ${this.key}`, async () => await this.client.kv.put({ key: Buffer.from(this.key), value: Buffer.from(text), lease: id }))
      } catch (e) {
        // Next update starts on a fresh lease (the failure may have been the lease itself).
        if (lease !== undefined) this.drop(lease)
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
      await lease.revoke()
    }
  }

  private keeper (): LeaseKeeper {
    const lease = new LeaseKeeper(this.client, this.ttl)
    lease.on('lost', err => {
      if (this.lease !== lease) return
      this.drop(lease)
      this.emit('lost', err)
    })
    return lease
  }

  private drop (lease: LeaseKeeper): void {
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

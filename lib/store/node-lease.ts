// A node's hold on its subnets and its record in etcd: acquisition (policy in subnet-pick.ts, one
// claim transaction in lease-registry.ts, retried on conflict), the kept-alive etcd lease both hang
// on, automatic re-acquisition of the same subnets when the lease is lost, re-assertion of keys
// that someone else deleted or altered while the lease lives, in-place publishing of record
// changes, graceful close and decommission. Library code: it emits events, never logs.
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { type Family, parseCidr } from '../ipam/cidr'
import type { FamilyRange, NetworkConfig } from '../config/network'
import { type NodeRecord, NODE_RECORD_VERSION } from './node-record'
import { parseNodeRecord } from './node-record-parse'
import { type StoreClient, StoreError, storeCall, storeError, isStoreError } from './client'
import { isNodeName, nodeKey, subnetKey } from './keys'
import { commitClaim, readAllocation, readOwnKeys, type OwnKeys } from './lease-registry'
import { LeaseError, isLeaseError } from './lease-error'
import { type RandomBelow, chooseSubnet } from './subnet-pick'
import { formatSubnetValue } from './subnet-value'
import { loadSubnetState, saveSubnetState } from './subnet-state'
import { removeNode } from './node-remove'
import { Backoff, type BackoffOptions } from './backoff'
import { LeaseKeeper } from './lease-keeper'

/** The parts of the record the node itself decides (the rest comes from the lease). */
export interface RecordFields {
  endpoint: string
  publicKey?: string
  vxlan?: { mac: string }
  mtu: number
  location?: string
}

export interface AcquireOptions {
  client: StoreClient
  prefix: string
  config: NetworkConfig
  name: string
  /** Where subnets.json lives (remembered subnets across restarts). */
  stateDir: string
  /** Lease TTL; long enough that restarts and short etcd outages never cost the subnet. Default 3600. */
  ttlSeconds?: number
  /** Specific subnets to ask for (at most one per family). */
  requested?: string[]
  record: RecordFields
  /** Claim attempts before giving up on conflicts. Default 20. */
  maxAttempts?: number
  random?: RandomBelow
  now?: () => Date
  /** Delays between re-acquisition attempts after the lease was lost. Default 100 ms → 5 s. */
  reacquireBackoff?: BackoffOptions
}

export interface NodeLeaseEvents {
  /** etcd says the lease is gone (expired during a partition, or revoked); re-acquiring. */
  lost: [StoreError]
  /** The same subnets and record are held again on a new lease. */
  reacquired: [NodeRecord]
  /** A re-acquisition attempt failed; `retrying` is false when it is hopeless (subnet taken, client closed). */
  reacquireFailed: [Error, boolean]
  /** Keepalives started failing: etcd unreachable (emitted once per failure streak; the keys live until TTL). */
  keepaliveFailed: [StoreError]
}

export const DEFAULT_LEASE_TTL = 3600

/** What a re-assertion found: keys as published, written again, or the lease itself gone (re-acquiring). */
export type Hold = 'intact' | 'reasserted' | 'lost'

/** Uniform random bigint in [0, n) from the system CSPRNG (bias negligible: 64 extra bits). */
export const cryptoRandomBelow: RandomBelow = n => {
  const bytes = Math.ceil(n.toString(16).length / 2) + 8
  return BigInt('0x' + randomBytes(bytes).toString('hex')) % n
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

function families (config: NetworkConfig): Array<{ family: Family, range: FamilyRange }> {
  const out: Array<{ family: Family, range: FamilyRange }> = []
  if (config.ipv4 !== undefined) out.push({ family: 4, range: config.ipv4 })
  if (config.ipv6 !== undefined) out.push({ family: 6, range: config.ipv6 })
  return out
}

function familyOf (cidr: string): Family | undefined {
  try { return parseCidr(cidr).family } catch { return undefined }
}

/** generation/since of a stored record, read leniently: it may be from an older, invalid run. */
function previous (value: string | undefined): { generation?: number, since?: string } {
  if (value === undefined) return {}
  try {
    const o = JSON.parse(value) as Record<string, unknown>
    const out: { generation?: number, since?: string } = {}
    if (typeof o.generation === 'number' && Number.isSafeInteger(o.generation) && o.generation >= 0) out.generation = o.generation
    if (typeof o.since === 'string' && !Number.isNaN(Date.parse(o.since))) out.since = o.since
    return out
  } catch {
    return {}
  }
}

/** The record in its documented field order (etcdctl output stays readable). */
function buildRecord (name: string, f: RecordFields, podCIDRs: string[], generation: number, since: string): NodeRecord {
  return {
    v: NODE_RECORD_VERSION,
    name,
    generation,
    endpoint: f.endpoint,
    ...(f.publicKey !== undefined ? { publicKey: f.publicKey } : {}),
    podCIDRs,
    ...(f.vxlan !== undefined ? { vxlan: { mac: f.vxlan.mac } } : {}),
    mtu: f.mtu,
    ...(f.location !== undefined ? { location: f.location } : {}),
    since
  }
}

function sameFields (a: RecordFields, b: RecordFields): boolean {
  return a.endpoint === b.endpoint && a.publicKey === b.publicKey && a.mtu === b.mtu &&
    a.location === b.location && a.vxlan?.mac === b.vxlan?.mac
}

type State = 'acquiring' | 'held' | 'lost' | 'closed'

export class NodeLease extends EventEmitter<NodeLeaseEvents> {
  readonly name: string
  private readonly o: AcquireOptions
  private readonly ttl: number
  private readonly random: RandomBelow
  private readonly backoff: Backoff
  private fields: RecordFields
  private state: State = 'acquiring'
  private lease: LeaseKeeper | undefined
  private id = ''
  private current: NodeRecord | undefined
  private recordModRevision = '0'
  private keepaliveFailing = false
  private retryTimer: NodeJS.Timeout | undefined
  private queue: Promise<unknown> = Promise.resolve()

  /** Use acquireNode(). */
  constructor (o: AcquireOptions) {
    super()
    if (!isNodeName(o.name)) throw new LeaseError(o.name, 'requestedInvalid', `"${o.name}" is not a valid node name`)
    this.o = o
    this.name = o.name
    this.ttl = o.ttlSeconds ?? DEFAULT_LEASE_TTL
    this.random = o.random ?? cryptoRandomBelow
    this.backoff = new Backoff(o.reacquireBackoff)
    this.fields = { ...o.record }
  }

  /** The node's pod subnets, one per configured family, IPv4 first. */
  get podCIDRs (): string[] { return [...this.record.podCIDRs] }
  /** The record as last published (or as it will be published on re-acquisition). */
  get record (): NodeRecord {
    if (this.current === undefined) throw new LeaseError(this.name, 'closed', 'not acquired')
    return this.current
  }

  /** The etcd lease ID (decimal string) the keys hang on now. */
  get leaseId (): string { return this.id }
  /** True while the keys are held on a live lease. */
  get held (): boolean { return this.state === 'held' }

  /** First acquisition; acquireNode() calls it. */
  async acquire (): Promise<void> {
    await this.serialize(async () => {
      const requested = this.requestedByFamily()
      const remembered = (await loadSubnetState(this.o.stateDir, this.name))?.podCIDRs
      const granted = await this.grant()
      try {
        await this.claim(granted.id, { remembered, requested })
      } catch (e) {
        granted.lease.revoke().catch(() => {})
        throw e
      }
      this.adopt(granted)
    })
  }

  /** Changes record fields in place (generation + 1); no write when nothing changed. */
  async publish (changes: Partial<RecordFields>): Promise<NodeRecord> {
    return await this.serialize(async () => {
      if (this.state === 'closed') throw new LeaseError(this.name, 'closed', 'cannot publish: the lease is closed')
      const fields: RecordFields = { ...this.fields }
      for (const [k, v] of Object.entries(changes) as Array<[keyof RecordFields, unknown]>) {
        if (v === undefined) delete fields[k]
        else (fields as unknown as Record<string, unknown>)[k] = v
      }
      const cur = this.record
      if (sameFields(fields, this.fields)) return cur
      const next = buildRecord(this.name, fields, cur.podCIDRs, cur.generation + 1, cur.since ?? this.now())
      const key = nodeKey(this.o.prefix, this.name)
      parseNodeRecord(key, JSON.stringify(next), this.o.config) // our own input must pass what readers check
      if (this.state === 'lost') {
        // Written together with the keys when the lease is re-acquired.
        this.fields = fields
        this.current = next
        return next
      }
      // The lease died under us (revoked, expired): keep the change for the re-acquisition.
      const keepForReacquire = (cause: unknown): NodeRecord | undefined => {
        if (this.lease !== undefined) this.onLost(this.lease, cause)
        if (!this.isLost()) return undefined
        this.fields = fields
        this.current = next
        return next
      }
      let res
      try {
        res = await commitClaim(this.o.client, {
          op: `publish node ${this.name}`,
          leaseId: this.id,
          put: [{ key, value: JSON.stringify(next), expectModRevision: this.recordModRevision }],
          del: []
        })
      } catch (e) {
        if (isStoreError(e) && e.kind === 'leaseLost') {
          const kept = keepForReacquire(e)
          if (kept !== undefined) return kept
        }
        throw e
      }
      if (!res.succeeded) {
        // Our record was deleted or changed by someone else (an operator, an etcd restore). It is
        // desired state: written again with the same subnets — unless the lease itself is gone.
        if (!(await this.leaseAlive())) {
          const kept = keepForReacquire(new StoreError('leaseLost', `publish node ${this.name}`, `lease ${this.id} is gone`))
          if (kept !== undefined) return kept
        }
        const before = this.fields
        this.fields = fields
        try {
          await this.claim(this.id, { fixed: cur.podCIDRs })
        } catch (e) {
          this.fields = before
          throw e
        }
        return this.record
      }
      this.fields = fields
      this.current = next
      this.recordModRevision = res.revision
      return next
    })
  }

  /**
   * Level-triggered hold on the node's own keys: reads its record and subnet leases and, when
   * they are not what this node published on its live lease (deleted or altered by someone
   * else, or restored from an older etcd snapshot), writes them again with the same subnets.
   * `force` writes even when they are intact: after an etcd restore the record's new mod
   * revision is what shows the node is alive. Throws a LeaseError `subnetTaken` when another
   * node holds one of the subnets now.
   */
  async reassert (o: { force?: boolean } = {}): Promise<Hold> {
    return await this.serialize(async () => {
      if (this.state === 'closed') throw new LeaseError(this.name, 'closed', 'cannot re-assert: the lease is closed')
      if (this.state === 'lost' || this.lease === undefined) {
        // Re-acquisition is under way, or gave up on a taken subnet: then try once more now.
        if (this.retryTimer === undefined) this.scheduleReacquire(0)
        return 'lost'
      }
      const lease = this.lease
      if (o.force !== true && this.intact(await readOwnKeys(this.o.client, this.o.prefix, this.name, this.record.podCIDRs))) return 'intact'
      if (!(await this.leaseAlive())) {
        this.onLost(lease, new StoreError('leaseLost', `re-assert node ${this.name}`, `lease ${this.id} is gone`))
        return 'lost'
      }
      await this.claim(this.id, { fixed: this.record.podCIDRs })
      return 'reasserted'
    })
  }

  /** Whether etcd holds exactly what this node published, on its current lease. */
  private intact (k: OwnKeys): boolean {
    if (k.record === undefined || k.record.lease !== this.id || k.record.value !== JSON.stringify(this.current)) return false
    return this.record.podCIDRs.every(c => {
      const s = k.subnets.get(c)
      return s !== undefined && s.node === this.name && s.lease === this.id
    })
  }

  /** Whether etcd still knows our lease (TTL -1 means it does not). */
  private async leaseAlive (): Promise<boolean> {
    const res = await storeCall(`lease ${this.id} time-to-live`, async () => await this.o.client.leaseClient.leaseTimeToLive({ ID: this.id }))
    return Number(res.TTL) > 0
  }

  private isLost (): boolean { return this.state === 'lost' }

  /** Graceful stop: keepalives end, the keys stay until TTL (or until the next start takes them over). */
  async close (): Promise<void> {
    await this.serialize(async () => {
      this.stopTimers()
      this.state = 'closed'
      this.lease?.release()
      this.lease?.removeAllListeners()
    })
  }

  /** Decommission: the record and subnet leases are deleted at once, the lease revoked. */
  async release (): Promise<void> {
    await this.serialize(async () => {
      this.stopTimers()
      this.state = 'closed'
      await removeNode(this.o.client, this.o.prefix, this.name)
      const lease = this.lease
      this.lease = undefined
      if (lease !== undefined) {
        lease.removeAllListeners()
        try {
          await lease.revoke()
        } catch (e) {
          throw storeError(`revoke lease of node ${this.name}`, e)
        }
      }
    })
  }

  private now (): string {
    return (this.o.now?.() ?? new Date()).toISOString()
  }

  private async serialize<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn)
    this.queue = p.catch(() => {})
    return await p
  }

  private stopTimers (): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    this.retryTimer = undefined
  }

  private requestedByFamily (): Map<Family, string> {
    const m = new Map<Family, string>()
    for (const r of this.o.requested ?? []) {
      const f = familyOf(r)
      if (f === undefined) throw new LeaseError(this.name, 'requestedInvalid', `requested subnet "${r}" is not a CIDR`)
      if (m.has(f)) throw new LeaseError(this.name, 'requestedInvalid', `more than one IPv${f} subnet requested`)
      if (!families(this.o.config).some(x => x.family === f)) {
        throw new LeaseError(this.name, 'requestedInvalid', `requested subnet ${r} is IPv${f}, which the cluster does not configure`)
      }
      m.set(f, r)
    }
    return m
  }

  private async grant (): Promise<{ lease: LeaseKeeper, id: string }> {
    const lease = new LeaseKeeper(this.o.client, this.ttl)
    const id = await lease.grant()
    lease.on('lost', err => this.onLost(lease, err))
    lease.on('keepaliveFailed', err => {
      if (this.lease !== lease || this.keepaliveFailing) return
      this.keepaliveFailing = true
      this.emit('keepaliveFailed', err)
    })
    lease.on('keepaliveSucceeded', () => { if (this.lease === lease) this.keepaliveFailing = false })
    return { lease, id }
  }

  private adopt (g: { lease: LeaseKeeper, id: string }): void {
    this.lease = g.lease
    this.id = g.id
    this.state = 'held'
    this.keepaliveFailing = false
    this.backoff.reset()
  }

  /**
   * Claims subnets and publishes the record on `leaseId`, retrying with a fresh read when
   * another node won a race. `fixed` (re-acquisition) allows only the given subnets.
   */
  private async claim (leaseId: string, how: { remembered?: string[], requested?: Map<Family, string>, fixed?: string[] }): Promise<void> {
    const attempts = this.o.maxAttempts ?? 20
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (await this.claimOnce(leaseId, how)) return
      // Lost a race: someone took a subnet we picked. Re-read and pick again after a short jitter.
      await sleep(Number(this.random(BigInt(10 * attempt))) + 1)
    }
    throw new LeaseError(this.name, 'conflict', `could not claim subnets after ${attempts} attempts: other nodes kept taking the chosen ones`)
  }

  private async claimOnce (leaseId: string, how: { remembered?: string[], requested?: Map<Family, string>, fixed?: string[] }): Promise<boolean> {
    const { client, prefix, config } = this.o
    const view = await readAllocation(client, prefix, this.name)
    const owners = new Map([...view.subnets].map(([c, h]) => [c, h.node]))
    const chosen: string[] = []
    for (const { family, range } of families(config)) {
      if (how.fixed !== undefined) {
        const cidr = how.fixed.find(c => familyOf(c) === family)
        if (cidr === undefined) continue
        const holder = owners.get(cidr)
        if (holder !== undefined && holder !== this.name) {
          throw new LeaseError(this.name, 'subnetTaken', `subnet ${cidr} is held by node ${holder} now, taken while this node's registration was gone`)
        }
        chosen.push(cidr)
        continue
      }
      const input: Parameters<typeof chooseSubnet>[0] = { node: this.name, family, range, owners, random: this.random }
      const remembered = how.remembered?.find(c => familyOf(c) === family)
      const requested = how.requested?.get(family)
      if (remembered !== undefined) input.remembered = remembered
      if (requested !== undefined) input.requested = requested
      chosen.push(chooseSubnet(input).cidr)
    }
    const prev = previous(view.record?.value)
    const generation = Math.max(prev.generation ?? -1, this.current?.generation ?? -1) + 1
    const record = buildRecord(this.name, this.fields, chosen, generation, prev.since ?? this.current?.since ?? this.now())
    const key = nodeKey(prefix, this.name)
    const value = JSON.stringify(record)
    parseNodeRecord(key, value, config)
    // Subnets this node holds but no longer uses (e.g. the config dropped a family) go in the same txn.
    const stale = [...view.subnets].filter(([c, h]) => h.node === this.name && !chosen.includes(c))
    const res = await commitClaim(client, {
      op: `claim subnets for node ${this.name}`,
      leaseId,
      put: [
        ...chosen.map(c => ({ key: subnetKey(prefix, c), value: formatSubnetValue(this.name), expectModRevision: view.subnets.get(c)?.modRevision ?? '0' })),
        { key, value, expectModRevision: view.record?.modRevision ?? '0' }
      ],
      del: stale.map(([c, h]) => ({ key: subnetKey(prefix, c), expectModRevision: h.modRevision }))
    })
    if (!res.succeeded) return false
    this.current = record
    this.recordModRevision = res.revision
    await saveSubnetState(this.o.stateDir, { v: 1, name: this.name, podCIDRs: chosen })
    return true
  }

  private onLost (lease: LeaseKeeper, err: unknown): void {
    if (lease !== this.lease || this.state !== 'held') return
    this.state = 'lost'
    this.lease = undefined
    lease.removeAllListeners()
    lease.release()
    this.emit('lost', storeError(`lease ${this.id} of node ${this.name}`, err))
    this.scheduleReacquire(0)
  }

  private scheduleReacquire (ms: number): void {
    this.stopTimers()
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.serialize(async () => await this.reacquireOnce()).catch(() => {})
    }, ms)
    this.retryTimer.unref()
  }

  private async reacquireOnce (): Promise<void> {
    if (this.state !== 'lost') return
    let granted: { lease: LeaseKeeper, id: string } | undefined
    try {
      granted = await this.grant()
      await this.claim(granted.id, { fixed: this.record.podCIDRs })
      if (this.state !== 'lost') { // closed meanwhile
        granted.lease.revoke().catch(() => {})
        return
      }
      this.adopt(granted)
      this.emit('reacquired', this.record)
    } catch (e) {
      granted?.lease.removeAllListeners()
      granted?.lease.revoke().catch(() => {})
      // Retrying cannot help when another node holds the subnet now, or the client was closed.
      const hopeless = (isLeaseError(e) && e.problem === 'subnetTaken') || (isStoreError(e) && e.kind === 'closed')
      this.emit('reacquireFailed', e as Error, !hopeless)
      if (!hopeless && this.state === 'lost') this.scheduleReacquire(this.backoff.next())
    }
  }
}

/** Leases subnets for node `name` and publishes its record; see NodeLease for what follows. */
export async function acquireNode (o: AcquireOptions): Promise<NodeLease> {
  const lease = new NodeLease(o)
  await lease.acquire()
  return lease
}

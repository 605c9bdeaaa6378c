// The daemon's view of all node records: one consistent list of nodes/ and subnets/ at revision
// R, then a watch from R+1 (one gRPC stream, one watch per directory), changes coalesced into a
// single 'change' carrying the full validated map (consumers are level-triggered). A record is
// used only if it parses and every subnet it claims is leased to it in subnets/; anything else is
// reported as 'rejected' and skipped. Of the records left, one that claims a public key, VXLAN MAC
// or pod CIDR an earlier record holds is skipped too (lib/mesh/claims.ts) and reported as a
// 'conflict', once per conflict. Compaction → re-list and report the exact difference. etcd
// gone → 'degraded', reconnect with capped backoff, resume each watch after its last revision,
// 'recovered' — unless etcd came back with an older revision or another cluster ID (restored from
// a snapshot, or replaced): then 'restored' and a re-list, since resuming would wait for
// revisions that will never come as we knew them. Library code: emits, never logs, never throws
// from the event path.
import { EventEmitter } from 'node:events'
import type { IKeyValue, IWatchRequest, IWatchResponse } from 'etcd3'
import type { NetworkConfig } from '../config/network'
import type { NodeRecord } from './node-record'
import { MAX_RECORD_BYTES, parseNodeRecord } from './node-record-parse'
import { rangePages } from './paged-range'
import { type StoreClient, StoreError, storeCall, storeError } from './client'
import { DEFAULT_SILENCE_PROBE, type SilenceProbe, openWatchStream, runWatchSession } from './watch-stream'
import { KeyError, nodeKey, nodesPrefix, parseKey, prefixEnd, subnetKey, subnetsPrefix } from './keys'
import { RecordError } from './record-error'
import { parseSubnetValue } from './subnet-value'
import { Backoff, type BackoffOptions } from './backoff'
import { ClaimLedger, type Conflict, conflictId } from '../mesh/claims'

export interface NodeWatchOptions {
  client: StoreClient
  prefix: string
  config: NetworkConfig
  /** Events arriving within this window become one 'change'. Default 10 ms. */
  coalesceMs?: number
  /** Reconnect delays. Default 100 ms doubling to 5 s. */
  backoff?: BackoffOptions
  /**
   * Silence detection on the watch stream: after idleMs with no message a progress request is
   * sent; no answer within timeoutMs ends the stream and the member is avoided. Default 5 s / 3 s.
   */
  probe?: { idleMs?: number, timeoutMs?: number }
}

export interface NodeChange {
  /** etcd revision the snapshot reflects. */
  revision: string
  /** Every valid node record, by name (the full current state, not a delta). */
  nodes: ReadonlyMap<string, NodeRecord>
  added: string[]
  updated: string[]
  removed: string[]
  /** True when this snapshot comes from a re-list (after compaction), not from watch events. */
  relisted: boolean
  /** Every current conflict: records left out of `nodes` because an earlier record holds what they claim. */
  conflicts: Conflict[]
}

export interface Rejection {
  key: string
  reason: string
  error: RecordError | KeyError
}

/** etcd answered with an older revision or another cluster ID than before: a restore or a replacement. */
export interface EtcdRestore {
  /** The revision this watcher had reached. */
  previousRevision: string
  /** etcd's revision now (the snapshot's, plus whatever was written since it came back). */
  revision: string
  clusterChanged: boolean
}

export interface NodeWatcherEvents {
  change: [NodeChange]
  restored: [EtcdRestore]
  rejected: [Rejection]
  /** A record newly skipped for claiming what an earlier record holds (once per conflict). */
  conflict: [Conflict]
  degraded: [StoreError]
  recovered: []
}

interface RawNode {
  key: string
  modRevision: bigint
  /** The record key's create revision: the age of its claims. */
  createRevision: bigint
  parsed: NodeRecord | RecordError
}

/** Owner of a subnet whose value is unreadable: no node name ever matches it. */
const NO_OWNER = ''

/** Fixed watch IDs on our stream (etcd ≥ 3.4 honours client-chosen IDs). */
const NODES_WATCH = '1'
const SUBNETS_WATCH = '2'

const big = (s: string | number | undefined): bigint => BigInt(s === undefined || s === '' ? 0 : s)
/**
 * Keys per page of a list. The memory a list needs is one page: LIST_PAGE × etcd's largest value
 * (--max-request-bytes, 1.5 MiB by default) = 96 MiB at worst, ~64 KiB for real records.
 */
export const LIST_PAGE = 64
/** A subnet value is a node name in a small JSON object (subnet-value.ts caps the text at 1 KiB). */
const MAX_SUBNET_BYTES = 1024

function refill<K, V> (map: Map<K, V>, from: ReadonlyMap<K, V>): void {
  map.clear()
  for (const [k, v] of from) map.set(k, v)
}

export class NodeWatcher extends EventEmitter<NodeWatcherEvents> {
  private readonly o: NodeWatchOptions
  private readonly coalesceMs: number
  private readonly backoff: Backoff
  private readonly probe: SilenceProbe
  private readonly raw = new Map<string, RawNode>()
  private readonly owners = new Map<string, string>()
  private snapshot: ReadonlyMap<string, NodeRecord> = new Map()
  private conflicts: Conflict[] = []
  /** The claim rule over successive snapshots: a join is judged against the accepted claims alone. */
  private readonly claims = new ClaimLedger<NodeRecord>()
  private revision = 0n
  /** Per-watch resume points: everything up to here has been received. */
  private nodesRev = 0n
  private subnetsRev = 0n
  /** Records whose subnet ownership is being confirmed by a direct read: name → mod revision. */
  private readonly confirming = new Map<string, bigint>()
  /** Last rejection reported per key, so a bad value is reported once, not on every change. */
  private readonly reported = new Map<string, string>()
  private listed = false
  /** etcd's cluster ID as of the last list ('' before the first). */
  private clusterId = ''
  /** The stream broke: before resuming, check that etcd is still the one we knew. */
  private interrupted = false
  private degraded = false
  private stopped = false
  private flushTimer: NodeJS.Timeout | undefined
  private sleepTimer: { timer: NodeJS.Timeout, resolve: () => void } | undefined
  private endSession: (() => void) | undefined
  private running: Promise<void> | undefined
  private firstChange: Promise<void>
  private resolveFirst: () => void = () => {}

  constructor (o: NodeWatchOptions) {
    super()
    this.o = o
    this.coalesceMs = o.coalesceMs ?? 10
    this.backoff = new Backoff(o.backoff)
    this.probe = { ...DEFAULT_SILENCE_PROBE, ...o.probe }
    this.firstChange = new Promise(resolve => { this.resolveFirst = resolve })
  }

  /** Starts listing and watching; resolves after the first 'change' (retrying while etcd is away). */
  async start (): Promise<void> {
    if (this.running === undefined) this.running = this.run()
    await Promise.race([this.firstChange, this.running])
  }

  /** The last emitted snapshot. */
  current (): ReadonlyMap<string, NodeRecord> { return this.snapshot }
  /** The conflicts of the last emitted snapshot. */
  currentConflicts (): readonly Conflict[] { return this.conflicts }
  /** The etcd revision of the last emitted snapshot ("0" before the first). */
  get currentRevision (): string { return this.revision.toString() }
  get isDegraded (): boolean { return this.degraded }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    if (this.sleepTimer !== undefined) {
      clearTimeout(this.sleepTimer.timer)
      this.sleepTimer.resolve()
    }
    this.endSession?.()
    this.resolveFirst()
    await this.running
  }

  private async run (): Promise<void> {
    let needList = true
    while (!this.stopped) {
      try {
        if (this.interrupted && !needList) needList = await this.restoredSince()
        this.interrupted = false
        if (needList) {
          await this.list()
          needList = false
        }
        if (this.stopped) break
        const outcome = await this.watchSession()
        if (outcome === 'compacted') needList = true
      } catch (e) {
        if (this.stopped) break
        const err = storeError(`watch ${this.o.prefix}`, e)
        this.interrupted = true
        if (!this.degraded) {
          this.degraded = true
          this.emit('degraded', err)
        }
        // A closed client never comes back: stop instead of retrying forever.
        if (err.kind === 'closed') break
        await this.sleep(this.backoff.next())
      }
    }
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      this.sleepTimer = { timer: setTimeout(resolve, ms), resolve }
    })
    this.sleepTimer = undefined
  }

  private recovered (): void {
    this.backoff.reset()
    if (this.degraded) {
      this.degraded = false
      this.emit('recovered')
    }
  }

  /** A cheap linearizable read: does etcd now answer with an older revision or another cluster? */
  private async restoredSince (): Promise<boolean> {
    const np = nodesPrefix(this.o.prefix)
    const res = await storeCall(`check the revision of ${np}`, async () => await this.o.client.kv.range({ key: Buffer.from(np), range_end: prefixEnd(np), count_only: true }))
    return this.continuityBreak(res.header) !== undefined
  }

  private continuityBreak (header: { cluster_id: string, revision: string }): EtcdRestore | undefined {
    const revision = big(header.revision)
    const clusterChanged = this.clusterId !== '' && header.cluster_id !== this.clusterId
    if (!clusterChanged && revision >= this.revision) return undefined
    return { previousRevision: this.revision.toString(), revision: revision.toString(), clusterChanged }
  }

  /**
   * One consistent read of nodes/ and subnets/, replacing everything we knew: in pages of
   * LIST_PAGE keys, all at the first page's revision (lib/store/paged-range.ts), so memory is
   * bounded by one page whatever the number or size of the values. A read that fails half-way
   * restores what we knew before it.
   */
  private async list (): Promise<void> {
    const np = nodesPrefix(this.o.prefix)
    const sp = subnetsPrefix(this.o.prefix)
    const previous = new Map(this.raw)
    const previousOwners = new Map(this.owners)
    const previousConfirming = new Map(this.confirming)
    this.raw.clear()
    this.owners.clear()
    this.confirming.clear()
    let header: { cluster_id: string, revision: string } | undefined
    const present = new Set<string>()
    try {
      for (const [prefix, put] of [[np, (kv: IKeyValue) => this.putNode(kv, previous)], [sp, (kv: IKeyValue) => this.putSubnet(kv)]] as const) {
        for await (const page of rangePages(this.o.client, prefix, { limit: LIST_PAGE, revision: header?.revision })) {
          header ??= page.header
          for (const kv of page.kvs) { put(kv); present.add(kv.key.toString()) }
          if (this.stopped) return
        }
      }
    } catch (e) {
      refill(this.raw, previous); refill(this.owners, previousOwners); refill(this.confirming, previousConfirming)
      throw e
    }
    if (this.stopped || header === undefined) return
    const restore = this.listed ? this.continuityBreak(header) : undefined
    this.clusterId = header.cluster_id
    // Forget reports about keys that are gone, so the map does not grow across re-lists.
    for (const key of [...this.reported.keys()]) if (!present.has(key)) this.reported.delete(key)
    const rev = big(header.revision)
    this.revision = this.nodesRev = this.subnetsRev = rev
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    // Before the snapshot: a consumer must learn that its own keys may be gone before it sees them gone.
    if (restore !== undefined) this.emit('restored', restore)
    this.flush(this.listed)
    this.listed = true
    this.recovered()
  }

  private async watchSession (): Promise<'compacted' | 'stopped'> {
    const w = await storeCall('open watch stream', async () => await openWatchStream(this.o.client))
    if (this.stopped) { try { w.stream.cancel() } catch {}; return 'stopped' }
    let created = 0
    const create = (id: string, prefix: string, from: bigint): IWatchRequest => ({
      create_request: {
        key: Buffer.from(prefix),
        range_end: prefixEnd(prefix),
        start_revision: (from + 1n).toString(),
        watch_id: id,
        progress_notify: true
      }
    })
    try {
      return await runWatchSession(this.o.client, w, {
        op: 'watch',
        probe: this.probe,
        watchIds: [NODES_WATCH, SUBNETS_WATCH],
        requests: [create(NODES_WATCH, nodesPrefix(this.o.prefix), this.nodesRev), create(SUBNETS_WATCH, subnetsPrefix(this.o.prefix), this.subnetsRev)],
        onOpen: stop => { this.endSession = stop },
        onCreated: () => { if (++created === 2) this.recovered() },
        onResponse: res => this.apply(res)
      })
    } finally {
      this.endSession = undefined
    }
  }

  /** Applies one watch response's events to the raw state and schedules a coalesced flush. */
  private apply (res: IWatchResponse): void {
    const events = res.events ?? []
    let upTo = events.length === 0 ? big(res.header.revision) : 0n
    for (const ev of events) {
      const mod = big(ev.kv.mod_revision)
      if (mod > upTo) upTo = mod
      if (res.watch_id === NODES_WATCH) {
        if (ev.type === 'Put') this.putNode(ev.kv)
        else this.deleteNode(ev.kv)
      } else if (res.watch_id === SUBNETS_WATCH) {
        if (ev.type === 'Put') this.putSubnet(ev.kv)
        else this.deleteSubnet(ev.kv)
      }
    }
    // Resume points advance only on what was actually delivered (events, or progress notices).
    if (res.watch_id === NODES_WATCH && upTo > this.nodesRev) this.nodesRev = upTo
    if (res.watch_id === SUBNETS_WATCH && upTo > this.subnetsRev) this.subnetsRev = upTo
    if (upTo > this.revision) this.revision = upTo
    if (events.length > 0) this.scheduleFlush()
  }

  private putNode (kv: IKeyValue, cache?: ReadonlyMap<string, RawNode>): void {
    const key = kv.key.toString()
    const mod = big(kv.mod_revision)
    let name: string
    try {
      const p = parseKey(this.o.prefix, key)
      if (p.kind !== 'node') throw new KeyError(key, 'not a node key')
      name = p.name
    } catch (e) {
      this.reject(key, mod, e as KeyError)
      return
    }
    const cached = cache?.get(name)
    if (cached !== undefined && cached.modRevision === mod) {
      this.raw.set(name, cached)
      return
    }
    let parsed: NodeRecord | RecordError
    try {
      // Measured on the bytes, before a string (and a JSON tree) of a hostile megabyte exists.
      if (kv.value.length > MAX_RECORD_BYTES) throw new RecordError(key, 'tooLarge', `record is ${kv.value.length} bytes (limit ${MAX_RECORD_BYTES})`)
      parsed = parseNodeRecord(key, kv.value.toString(), this.o.config)
    } catch (e) {
      parsed = e instanceof RecordError ? e : new RecordError(key, 'type', String(e))
    }
    this.raw.set(name, { key, modRevision: mod, createRevision: big(kv.create_revision), parsed })
  }

  private deleteNode (kv: IKeyValue): void {
    const key = kv.key.toString()
    this.reported.delete(key)
    try {
      const p = parseKey(this.o.prefix, key)
      if (p.kind === 'node') {
        this.raw.delete(p.name)
        this.confirming.delete(p.name)
      }
    } catch {}
  }

  private putSubnet (kv: IKeyValue): void {
    const key = kv.key.toString()
    const mod = big(kv.mod_revision)
    let cidr: string
    try {
      const p = parseKey(this.o.prefix, key)
      if (p.kind !== 'subnet') throw new KeyError(key, 'not a subnet key')
      cidr = p.cidr
    } catch (e) {
      this.reject(key, mod, e as KeyError)
      return
    }
    try {
      if (kv.value.length > MAX_SUBNET_BYTES) throw new RecordError(key, 'tooLarge', `subnet value is ${kv.value.length} bytes`)
      this.owners.set(cidr, parseSubnetValue(key, kv.value.toString()))
    } catch (e) {
      // Held by something we cannot read: nobody may claim it.
      this.owners.set(cidr, NO_OWNER)
      this.reject(key, mod, e as RecordError)
    }
  }

  private deleteSubnet (kv: IKeyValue): void {
    const key = kv.key.toString()
    this.reported.delete(key)
    try {
      const p = parseKey(this.o.prefix, key)
      if (p.kind === 'subnet') this.owners.delete(p.cidr)
    } catch {}
  }

  private reject (key: string, mod: bigint, error: RecordError | KeyError): void {
    const problem = error instanceof RecordError ? error.problem : 'key'
    const sig = `${mod}:${problem}`
    if (this.reported.get(key) === sig) return
    this.reported.set(key, sig)
    this.emit('rejected', { key, reason: error.message, error })
  }

  /**
   * Why `rec` does not own its subnets, or undefined when it does. `ownerOf` gives a subnet's
   * owner: undefined when it has no lease, NO_OWNER when its lease value is unreadable. The same
   * judgement serves the watch's view and the confirming direct read.
   */
  private ownershipProblem (rec: NodeRecord, ownerOf: (cidr: string) => string | undefined = c => this.owners.get(c)): string | undefined {
    for (const cidr of rec.podCIDRs) {
      const owner = ownerOf(cidr)
      if (owner === undefined) return `claims subnet ${cidr}, which has no lease in ${subnetsPrefix(this.o.prefix)}`
      if (owner !== rec.name) {
        return owner === NO_OWNER
          ? `claims subnet ${cidr}, whose lease is unreadable`
          : `claims subnet ${cidr}, which is leased to node ${owner}`
      }
    }
    return undefined
  }

  private scheduleFlush (): void {
    if (this.flushTimer !== undefined || this.stopped) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flush(false)
    }, this.coalesceMs)
  }

  /** Recomputes the valid map from the raw state and emits the difference (if any). */
  private flush (relisted: boolean): void {
    if (this.stopped) return
    const owned: Array<{ record: NodeRecord, createRevision: bigint }> = []
    for (const [name, r] of this.raw) {
      if (r.parsed instanceof RecordError) {
        this.reject(r.key, r.modRevision, r.parsed)
        continue
      }
      const problem = this.ownershipProblem(r.parsed)
      if (problem === undefined) {
        owned.push({ record: r.parsed, createRevision: r.createRevision })
        this.confirming.delete(name)
        continue
      }
      this.confirmOwnership(name, r)
    }
    const verdict = this.claims.resolve(owned)
    const next = new Map(verdict.accepted.map(rec => [rec.name, rec]))
    const known = new Set(this.conflicts.map(conflictId))
    const fresh = verdict.conflicts.filter(c => !known.has(conflictId(c)))
    const conflictsChanged = fresh.length > 0 || verdict.conflicts.length !== this.conflicts.length
    this.conflicts = verdict.conflicts
    const prev = this.snapshot
    const added: string[] = []
    const updated: string[] = []
    const removed: string[] = []
    for (const [name, rec] of next) {
      const old = prev.get(name)
      if (old === undefined) added.push(name)
      else if (old !== rec && JSON.stringify(old) !== JSON.stringify(rec)) updated.push(name)
    }
    for (const name of prev.keys()) if (!next.has(name)) removed.push(name)
    this.snapshot = next
    const first = !this.listed
    for (const c of fresh) this.emit('conflict', c)
    if (added.length + updated.length + removed.length === 0 && !relisted && !first && !conflictsChanged) return
    this.emit('change', { revision: this.revision.toString(), nodes: next, added, updated, removed, relisted, conflicts: verdict.conflicts })
    this.resolveFirst()
  }

  /**
   * A record whose subnets are not (yet) leased to it. The subnets/ event may simply not have
   * arrived yet (two watches, one stream), so read the truth directly before rejecting it.
   */
  private confirmOwnership (name: string, r: RawNode): void {
    if (this.confirming.get(name) === r.modRevision) return
    this.confirming.set(name, r.modRevision)
    const rec = r.parsed as NodeRecord
    const { client, prefix } = this.o
    client.kv.txn({
      compare: [],
      success: [
        { request_range: { key: Buffer.from(nodeKey(prefix, name)) } },
        ...rec.podCIDRs.map(c => ({ request_range: { key: Buffer.from(subnetKey(prefix, c)) } }))
      ],
      failure: []
    }).then(res => {
      if (this.stopped || this.confirming.get(name) !== r.modRevision) return
      const node = res.responses[0]?.response_range.kvs[0]
      // The record changed or vanished since: the watch brings the newer state.
      if (node === undefined || big(node.mod_revision) !== r.modRevision) return
      // Judge by what etcd holds now: the in-memory view that raised the doubt may predate the
      // subnets/ event (its message could say "no lease" where the lease is there but unreadable).
      const read = new Map(rec.podCIDRs.map((c, i): [string, string | undefined] => {
        const kv = res.responses[i + 1]?.response_range.kvs[0]
        if (kv === undefined) return [c, undefined]
        try { return [c, parseSubnetValue(c, kv.value.toString())] } catch { return [c, NO_OWNER] }
      }))
      const truth = this.ownershipProblem(rec, c => read.get(c))
      // Owned in etcd: the subnets/ event is on its way and its flush will accept the record.
      if (truth === undefined) return
      this.reject(r.key, r.modRevision, new RecordError(r.key, 'owner', truth))
    }, () => {
      // Could not confirm (etcd away): try again on the next change.
      if (this.confirming.get(name) === r.modRevision) this.confirming.delete(name)
    })
  }
}

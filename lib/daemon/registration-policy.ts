// What podmeshd does about its own registration (record and subnet leases) beyond holding it
// (registration.ts): it prunes nothing while the registration is in doubt and for a short settle
// after it was written again; a subnet another node keeps is given up by exiting (status 4); and
// after an etcd restore it removes the records no live node re-asserted, judged by the
// generations it saw before (generation-memory.ts). It logs and counts; the daemon owns the loop.

import type { Logger } from 'pino'
import type { NodeRecord } from '../store/node-record'
import type { NodeLease } from '../store/node-lease'
import type { StoreClient } from '../store/client'
import type { EtcdRestore } from '../store/node-watch'
import { removeUnasserted } from '../store/restore-sweep'
import { Registration } from './registration'
import { GenerationMemory } from './generation-memory'
import { EXIT_STATUS, type ExitStatus } from './exit-status'
import type { Metrics } from './metrics'
import type { Readiness } from './health'
import type { ReconcileReason } from './reconcile-reason'

/** How long after noticing an etcd restore a record nobody re-asserted counts as a dead node's. */
const RESTORE_GRACE_MS = 3000
/**
 * After the own registration was written again, pruning waits this long: losing it is most often
 * a cluster-wide event (keys wiped, etcd restored) and the other nodes are re-asserting theirs
 * too; pruning their peers meanwhile would cut traffic for nothing.
 */
const PRUNE_SETTLE_MS = 2000
/** How long a subnet taken by another node is waited on (the holder may let go) before exiting. */
const SUBNET_TAKEN_EXIT_MS = 10_000

export interface RegistrationPolicyHost {
  log: Logger
  metrics: Metrics
  client: StoreClient
  prefix: string
  nodeName: string
  /** Asks for a reconcile pass. */
  trigger: (reason: ReconcileReason) => void
  /** Asks for a status write. */
  report: () => void
  fatal: (status: ExitStatus, error: Error) => void
  isDegraded: () => boolean
}

export class RegistrationPolicy {
  readonly registration: Registration
  /** What this node saw of every record's generation, departed nodes included: evidence after a restore. */
  private readonly generations = new GenerationMemory()
  private settle: NodeJS.Timeout | undefined
  private takenExit: NodeJS.Timeout | undefined
  private restoreSweep: NodeJS.Timeout | undefined
  private stopped = false

  constructor (private readonly host: RegistrationPolicyHost, lease: NodeLease) {
    const { log, metrics } = host
    const r = this.registration = new Registration(lease)
    metrics.registrationHeld.set(1)
    r.on('state', ({ state, detail }) => {
      metrics.registrationHeld.set(state === 'held' ? 1 : 0)
      if (state === 'held') {
        this.clear('takenExit')
        log.info({ registration: state, podCIDRs: lease.podCIDRs, generation: lease.record.generation }, 'own registration held')
        // Pruning was held back while the registration was in doubt; the status key may be gone too.
        host.trigger('registration')
        host.report()
      } else {
        metrics.registrationLost.inc({ reason: state })
        log.warn({ registration: state, detail }, 'own registration not held: not ready, pruning nothing')
      }
    })
    r.on('reasserted', ({ generation, how }) => {
      this.settleBeforePruning()
      metrics.registrationWrites.inc({ how })
      log.warn({ how, generation, podCIDRs: lease.podCIDRs }, 'own record and subnet leases written again')
    })
    r.on('taken', e => {
      log.error({ err: e, podCIDRs: lease.podCIDRs, exitInMs: this.takenExit === undefined ? SUBNET_TAKEN_EXIT_MS : undefined },
        'another node holds this node\'s subnet; its pods\' addresses are no longer this node\'s')
      // Never keep serving a subnet that another node owns: if the holder does not let go, exit;
      // the restart (systemd) allocates a new subnet and rewrites the CNI config.
      this.takenExit ??= setTimeout(() => {
        if (r.state === 'taken') host.fatal(EXIT_STATUS.subnetTaken, e)
      }, SUBNET_TAKEN_EXIT_MS)
    })
    r.on('checkFailed', e => {
      metrics.etcdErrors.inc({ op: 'registration' })
      if (!host.isDegraded()) log.warn({ err: e }, 'could not check the own registration; retrying')
    })
  }

  /** Pruning needs the own registration held and settled: the view may be partial otherwise. */
  get mayPrune (): boolean { return this.registration.held && this.settle === undefined }

  /** Not ready while the registration is not held; undefined when this policy has no objection. */
  readiness (): Readiness | undefined {
    return this.registration.held ? undefined : { ready: false, detail: this.registration.detail }
  }

  /** A watch change: remember generations, and doubt the registration if the view lacks it. Call before the pass. */
  observe (previous: ReadonlyMap<string, NodeRecord>, change: { nodes: ReadonlyMap<string, NodeRecord>, added: readonly string[], removed: readonly string[] }): void {
    this.generations.observe(previous, change)
    this.registration.observe(change.nodes.get(this.host.nodeName))
  }

  /** The periodic resync: one cheap read of the own keys. */
  resync (): void { this.registration.check() }

  /** etcd came back older (a snapshot restore) or replaced: re-assert, then remove records nobody re-asserted. */
  restored (restore: EtcdRestore, nodes: ReadonlyMap<string, NodeRecord>): void {
    const { log, metrics } = this.host
    // What was published before the restore, departed nodes included: a live node re-asserts
    // with a higher generation than this; a restored record of a node that left does not.
    const known = this.generations.known(nodes)
    metrics.restoresDetected.inc()
    log.warn({ ...restore }, 'etcd restored from an older snapshot or replaced: re-asserting own registration')
    this.registration.restored(`etcd restored (revision ${restore.previousRevision} -> ${restore.revision}${restore.clusterChanged ? ', new cluster ID' : ''}); re-asserting`)
    this.host.trigger('etcd-restored')
    this.clear('restoreSweep')
    this.restoreSweep = setTimeout(() => {
      this.restoreSweep = undefined
      // Only a node that holds its own registration again judges the others.
      if (this.stopped || !this.registration.held || this.host.isDegraded()) return
      removeUnasserted(this.host.client, this.host.prefix, { known, except: this.host.nodeName }).then(removed => {
        if (removed.length === 0) return
        metrics.restoreRemovals.inc(removed.length)
        log.warn({ nodes: removed }, 'removed records that no live node re-asserted after the etcd restore')
      }, e => log.warn({ err: e }, 'could not remove stale records after the etcd restore'))
    }, RESTORE_GRACE_MS)
  }

  stop (): void {
    this.stopped = true
    this.clear('settle')
    this.clear('takenExit')
    this.clear('restoreSweep')
    this.registration.stop()
  }

  /** Holds pruning for PRUNE_SETTLE_MS, then asks for a pass that prunes. */
  private settleBeforePruning (): void {
    this.clear('settle')
    this.settle = setTimeout(() => {
      this.settle = undefined
      this.host.trigger('registration')
    }, PRUNE_SETTLE_MS)
  }

  private clear (timer: 'settle' | 'takenExit' | 'restoreSweep'): void {
    const t = this[timer]
    if (t !== undefined) clearTimeout(t)
    this[timer] = undefined
  }
}

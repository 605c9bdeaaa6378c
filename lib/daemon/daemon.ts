// podmeshd's lifecycle: acquire the node's subnet lease, publish its record, prepare the pod
// network (bridge, CNI conflist, forwarding), then keep the kernel equal to the desired state
// derived from etcd — watch-driven with a periodic resync — and serve health and metrics.
// Stopping leaves the data plane in place (pods keep talking); --leave decommissions.

import { EventEmitter } from 'node:events'
import type { Server } from 'node:http'
import type { Logger } from 'pino'
import type { NetworkConfig } from '../config/network'
import { checkRangesAgainstHost } from '../config/network-host'
import { networkConfigWarnings } from '../config/network-parse'
import type { DaemonOptions } from '../config/daemon-options'
import type { NodeRecord } from '../store/node-record'
import { Rtnl } from '../dataplane/rtnl'
import { Kernel } from '../dataplane/kernel'
import { ensureForwarding } from '../dataplane/sysctl'
import { ensurePodNetwork, removePodNetwork, repairPodNetwork, type PodNetworkSpec } from '../dataplane/pod-network'
import type { LocalIdentity, MtuPlan } from '../mesh/desired'
import { DesiredMemo } from '../mesh/desired-memo'
import { mtuChanges } from '../mesh/mtu-change'
import { MAX_STATUS_NARROW, type MtuStatus, type ServiceStatus } from '../store/status-value'
import { plan, describePlan } from '../mesh/plan'
import { afterApply } from '../mesh/expected'
import { formatEndpoint } from '../store/endpoint'
import { planIsEmpty, type DesiredState, type ObservedState, type Plan } from '../mesh/types'
import { samePlanInput } from '../mesh/observed-equal'
import { Reconciler, backoffDelay, isPassDeadlineError } from './reconciler'
import { loopReadiness } from './loop-health'
import { readsKernel, type ReconcileReason } from './reconcile-reason'
import { createMetrics, type Metrics, type PeerHandshake } from './metrics'
import { startHealthServer, type Readiness } from './health'
import { openStore, type Store, type NodeLease, type NodeWatcher } from './store-session'
import { StatusReport } from './status-report'
import type { ConfigWatcher } from '../store/config-watch'
import { localIdentity, recordFields, resolveIdentity, type NodeIdentity } from './identity'
import { RegistrationPolicy } from './registration-policy'
import { EXIT_STATUS, type ExitStatus } from './exit-status'
import { type Conflict, type OwnClaims, describeConflict, ownClaimConflicts } from '../mesh/claims'
import { IdentityClaimedError, claimedAtStart } from './identity-claim'
import { countConflicts, setMtu } from './metrics'
import { UnderlayFollower } from './underlay-follow'
import { dropConnections, memberHealth } from '../store/client'
import { parseEndpoint } from '../store/endpoint'
import { PathMtuProber } from './path-mtu-prober'
import { ServiceSync } from './service-sync'
import { PodPublisher } from './pod-publisher'
import { ensureBridgeNetfilter } from '../dataplane/sysctl'
import { removeServiceTable } from '../dataplane/nft/apply'
import type { NodeSubnets } from '../service/pod-trust'

export interface DaemonEvents {
  ready: []
  applied: [{ changes: string[] }]
  /**
   * A reconcile pass ended by itself — applied, or failed fast — so the loop is alive (systemd's
   * watchdog). A pass abandoned at its deadline is not one: that is the stall.
   */
  passEnded: []
  /** The daemon cannot go on; the process should stop and exit with `status`. */
  fatal: [{ status: ExitStatus, error: Error }]
}

export class Daemon extends EventEmitter<DaemonEvents> {
  readonly metrics: Metrics = createMetrics(() => this.peerHandshakes())
  private store: Store | undefined
  private rtnl: Rtnl | undefined
  private kernel: Kernel | undefined
  private lease: NodeLease | undefined
  private registration: RegistrationPolicy | undefined
  private watcher: NodeWatcher | undefined
  private reconciler: Reconciler | undefined
  private server: Server | undefined
  private config: NetworkConfig | undefined
  private self: LocalIdentity | undefined
  private nodes: ReadonlyMap<string, NodeRecord> = new Map()
  /** The records as one array per snapshot: the status value memoises its peer directory on it. */
  private nodeList: { of: ReadonlyMap<string, NodeRecord>, list: readonly NodeRecord[] } | undefined
  private synced = false
  private degraded = false
  private applied = false
  private lastObserved: ObservedState | undefined
  /** The kernel's state after the last successful apply; dropped when an apply fails. */
  private expected: ObservedState | undefined
  private podNetwork: PodNetworkSpec | undefined
  private stopping = false
  private status: StatusReport | undefined
  private configWatch: ConfigWatcher | undefined
  /** A config revision written to etcd after the one this daemon runs. */
  private configPending: string | undefined
  private lastDegraded: { since: string, until?: string } | undefined
  private ownClaims: OwnClaims | undefined
  private conflicts: readonly Conflict[] = []
  private refusal: IdentityClaimedError | undefined
  private underlay: UnderlayFollower | undefined
  /** The device and pod MTUs of the last pass that applied. */
  private mtu: MtuPlan | undefined
  private pathMtu: PathMtuProber | undefined
  /** Services (issue #11): only in a cluster with service ranges. */
  private services: ServiceSync | undefined
  private podPublisher: PodPublisher | undefined
  private nodeSubnetsOf: { of: ReadonlyMap<string, NodeRecord>, subnets: NodeSubnets } | undefined
  /** The service rules as the status value says them. */
  private serviceStatus: ServiceStatus | undefined
  /** The node records last handed to the path MTU prober, and the known path MTUs at a prober revision. */
  private pathPeersOf: ReadonlyMap<string, NodeRecord> | undefined
  private knownPaths: { revision: number, mtus: ReadonlyMap<string, number> } | undefined
  private readonly desired = new DesiredMemo()
  /**
   * The last pass whose plan was empty, with what it planned from. A pass with the same desired
   * state (the same object: DesiredMemo) and a kernel read that is the same to the planner
   * (samePlanInput: every field plan() reads) has that same plan: a quiet resync skips the diff.
   */
  private quiet: { desired: DesiredState, observed: ObservedState, prune: boolean, plan: Plan } | undefined

  constructor (private readonly opts: DaemonOptions, private readonly log: Logger) {
    super()
  }

  /** Starts in named steps; resolves once the first pass has applied the data plane. */
  async start (): Promise<void> {
    this.server = await this.startServer()
    this.store = await this.withEtcdRetry('connect and read config', async () => await openStore(this.opts))
    this.config = this.store.config
    this.log.info({ config: { ...this.config } }, 'network config read')
    memberHealth(this.store.client)?.on('suspect', s => {
      this.metrics.etcdMemberAvoided.inc({ member: s.member })
      this.log.warn({ etcdMember: s.member, reason: s.why, avoidUntil: new Date(s.untilMs).toISOString() }, 'etcd member set aside: calls and the watch go to the other members meanwhile')
    })
    this.rtnl = Rtnl.open({ onError: e => this.log.warn({ err: e }, 'netlink socket error; requests in flight fail by their timeout') })
    const identity = await this.resolveIdentity(this.rtnl, this.config)
    // A pod range holding this node's underlay or etcd would route tunnel and store traffic into the tunnel.
    checkRangesAgainstHost(this.config, { underlay: [identity.underlay.ip], etcdEndpoints: this.opts.etcdEndpoints })
    for (const w of networkConfigWarnings(this.config)) this.log.warn({ config: this.config }, w)
    await this.refuseClaimedIdentity(this.store, identity)
    this.lease = await this.acquireLease(this.store, this.config, identity)
    this.self = localIdentity(this.opts, identity, this.lease.podCIDRs)
    await this.preparePodNetwork(this.rtnl, this.config, identity, this.lease.podCIDRs)
    await this.startLoop(this.store, this.rtnl, identity)
  }

  private async startServer (): Promise<Server | undefined> {
    if (this.opts.metricsAddress === '') return undefined
    return await startHealthServer(this.opts.metricsAddress, { readiness: () => this.readiness(), registry: this.metrics.registry })
  }

  /** Underlay, tunnel MTU, WireGuard key and VTEP MAC. */
  private async resolveIdentity (rtnl: Rtnl, config: NetworkConfig): Promise<NodeIdentity> {
    const id = await resolveIdentity(this.opts, config, rtnl)
    this.log.info({ underlay: id.underlay.ip, underlayInterface: id.underlay.ifname, underlayMtu: id.underlay.mtu, mtu: id.mtu, publicKey: id.key?.publicKey }, 'node identity')
    return id
  }

  /** Never publish a key or MAC that another node's record holds (a cloned state dir): refuse before the lease. */
  private async refuseClaimedIdentity (store: Store, identity: NodeIdentity): Promise<void> {
    this.ownClaims = { name: this.opts.nodeName, ...(identity.key !== undefined ? { publicKey: identity.key.publicKey } : {}), ...(identity.vxlanMac !== undefined ? { vxlanMac: identity.vxlanMac } : {}) }
    const w = store.watch()
    w.on('degraded', e => this.log.warn({ error: e.message, step: 'claim check' }, 'etcd not reachable; retrying'))
    const conflicts = await claimedAtStart(w, this.ownClaims)
    if (conflicts.length > 0) throw new IdentityClaimedError({ node: this.opts.nodeName, stateDir: this.opts.stateDir, phase: 'start', conflicts })
  }

  /** The subnet lease and the node record, held for as long as the daemon runs. */
  private async acquireLease (store: Store, config: NetworkConfig, identity: NodeIdentity): Promise<NodeLease> {
    const o = this.opts
    const lease = await this.withEtcdRetry('acquire subnet lease', async () => await store.acquire({
      name: o.nodeName,
      stateDir: o.stateDir,
      ttlSeconds: o.leaseTtlSeconds,
      ...(o.subnets !== undefined ? { requested: o.subnets } : {}),
      record: recordFields(o, config, identity)
    }))
    this.log.info({ podCIDRs: lease.podCIDRs, generation: lease.record.generation }, 'subnet lease held')
    lease.on('lost', () => this.metrics.etcdErrors.inc({ op: 'lease' }))
    lease.on('keepaliveFailed', (e: unknown) => { this.metrics.etcdErrors.inc({ op: 'keepalive' }); this.log.warn({ err: e }, 'lease keepalive failed') })
    this.registration = this.holdRegistration(store, lease)
    return lease
  }

  /** The node's own record and subnet leases, kept as desired state: re-asserted when someone else removes or alters them. */
  private holdRegistration (store: Store, lease: NodeLease): RegistrationPolicy {
    return new RegistrationPolicy({
      log: this.log,
      metrics: this.metrics,
      client: store.client,
      prefix: store.prefix,
      nodeName: this.opts.nodeName,
      trigger: reason => this.reconciler?.trigger(reason),
      report: () => this.status?.trigger(),
      fatal: (status, error) => this.emit('fatal', { status, error }),
      isDegraded: () => this.degraded
    }, lease)
  }

  /** Forwarding sysctls, the pod bridge and the CNI conflist for the node's subnets. */
  private async preparePodNetwork (rtnl: Rtnl, config: NetworkConfig, identity: NodeIdentity, podCIDRs: string[]): Promise<void> {
    const o = this.opts
    const forwarding = await ensureForwarding({ ipv4: config.ipv4 !== undefined, ipv6: config.ipv6 !== undefined })
    if (forwarding.length > 0) this.log.info({ sysctls: forwarding }, 'forwarding enabled')
    this.podNetwork = {
      bridge: o.cniBridge,
      network: o.cniNetwork,
      confDir: o.cniConfDir,
      ...(o.cniDataDir !== undefined ? { dataDir: o.cniDataDir } : {}),
      podCIDRs,
      clusterCIDRs: [config.ipv4?.cidr, config.ipv6?.cidr].filter((c): c is string => c !== undefined),
      mtu: identity.mtu,
      masquerade: o.masquerade,
      ...(config.services !== undefined ? { podDir: o.podDir } : {})
    }
    if (config.services !== undefined) await this.prepareBridgeNetfilter(config)
    const pod = await ensurePodNetwork(rtnl, this.podNetwork)
    this.log.info({ bridge: o.cniBridge, conflist: pod.conflistPath, written: pod.conflistWritten, masquerade: o.masquerade }, 'pod network ready')
  }

  /**
   * A pod calling a pod of its own node through a cluster IP gets its reply bridged: without
   * br_netfilter that reply is not un-DNATed and the call fails (docs/services.md). Said, not fatal:
   * everything else works, and loading a kernel module is the operator's choice.
   */
  private async prepareBridgeNetfilter (config: NetworkConfig): Promise<void> {
    const bridged = await ensureBridgeNetfilter({ ipv4: config.ipv4 !== undefined, ipv6: config.ipv6 !== undefined })
    if (bridged.missing) {
      this.log.warn('br_netfilter is not loaded: a pod calling a service whose endpoint is on its own node gets no answer (modprobe br_netfilter; docs/services.md)')
    } else if (bridged.changes.length > 0) {
      this.log.info({ sysctls: bridged.changes }, 'bridged pod traffic goes through netfilter (services)')
    }
  }

  /** The kernel adapter, the reconcile loop, the watch and the status report, wired together. */
  private async startLoop (store: Store, rtnl: Rtnl, identity: NodeIdentity): Promise<void> {
    const o = this.opts
    this.kernel = new Kernel({
      rtnl,
      devices: { wireguard: o.wgInterface, vxlan: o.vxlanInterface },
      ...(identity.key !== undefined ? { privateKeyFile: identity.key.privateKeyFile } : {}),
      wgMode: o.wgMode
    })
    this.reconciler = this.createReconciler()
    this.watcher = this.createWatcher(store)
    this.watcher.on('restored', r => this.registration?.restored(r, this.nodes))
    await this.watcher.start()
    if (this.refusal !== undefined) throw this.refusal
    this.status = this.createStatusReport(store)
    this.reconciler.start()
    this.reconciler.trigger('start')
    await this.reconciler.settled()
    this.status.start()
    this.configWatch = await this.watchConfig(store)
    this.underlay = this.followUnderlay(store, rtnl, identity)
    this.pathMtu = this.probePaths(rtnl, identity)
    if (this.config?.services !== undefined) this.startServices(store)
  }

  /**
   * Services (issue #11): this node's pods published from the CNI plugin's spool, and the
   * service rules kept equal to etcd. Both follow the lease: a lease taken anew republishes.
   */
  private startServices (store: Store): void {
    const o = this.opts
    const lease = this.lease
    const publisher = new PodPublisher({ client: store.client, prefix: store.prefix, node: o.nodeName, dir: o.podDir, leaseId: () => lease?.held === true ? lease.leaseId : undefined })
    publisher.on('published', r => this.log.info({ put: r.put, deleted: r.deleted, pods: r.pods }, 'pods published'))
    publisher.on('badFile', b => this.log.warn({ file: b.file, problem: b.problem }, 'pod report skipped'))
    publisher.on('failed', e => { this.metrics.etcdErrors.inc({ op: 'pods' }); this.log.warn({ error: e.message }, 'publishing pods failed; will retry') })
    lease?.on('reacquired', () => publisher.trigger())
    publisher.start()
    this.podPublisher = publisher
    const sync = new ServiceSync({
      client: store.client,
      prefix: store.prefix,
      node: o.nodeName,
      nodeSubnets: () => this.nodeSubnets(),
      nodeAddresses: () => this.nodeAddresses(),
      resyncIntervalMs: o.resyncIntervalMs
    })
    sync.on('applied', a => {
      this.serviceStatus = { services: a.services, endpoints: a.endpoints, syncedAt: new Date().toISOString() }
      this.metrics.serviceSyncs.inc({ kind: a.kind })
      this.metrics.services.set(a.services)
      this.metrics.serviceEndpoints.set(a.endpoints)
      if (a.kind !== 'none') this.log.info({ reason: a.reason, kind: a.kind, services: a.services, endpoints: a.endpoints, durationMs: a.durationMs }, 'service rules updated')
    })
    sync.on('skipped', s => { this.metrics.rejectedRecords.inc(); this.log.warn({ key: s.key, reason: s.reason }, 'etcd value skipped for services') })
    sync.on('drift', () => this.log.warn('table inet podmesh was gone; writing it whole'))
    sync.on('failed', f => {
      this.serviceStatus = { ...(this.serviceStatus ?? { services: 0, endpoints: 0 }), failing: `${f.step}: ${f.error.message}` }
      this.metrics.serviceSyncs.inc({ kind: 'failed' })
      this.log.warn({ step: f.step, error: f.error.message, retryInMs: f.retryInMs }, 'service rules not updated; will retry')
    })
    sync.start()
    this.services = sync
  }

  private nodeSubnets (): NodeSubnets {
    if (this.nodeSubnetsOf?.of !== this.nodes) {
      this.nodeSubnetsOf = { of: this.nodes, subnets: new Map([...this.nodes.values()].map(n => [n.name, n.podCIDRs])) }
    }
    return this.nodeSubnetsOf.subnets
  }

  private nodeAddresses (): { 4?: readonly string[], 6?: readonly string[] } {
    const ip = this.self?.underlayIp
    if (ip === undefined) return {}
    return ip.includes(':') ? { 6: [ip] } : { 4: [ip] }
  }

  /**
   * Path MTUs toward routed peers (issue #12): a peer behind a narrower hop gets pod routes with
   * a smaller MTU. Probes run beside the loop; a changed path re-plans without reading the kernel.
   */
  private probePaths (rtnl: Rtnl, identity: NodeIdentity): PathMtuProber | undefined {
    if (!this.opts.pathMtuDiscovery) return undefined
    const underlayMtu = identity.underlay.mtu
    const p = new PathMtuProber({ rtnl, localMtu: () => underlayMtu, intervalMs: this.opts.pathMtuIntervalMs })
    // Only a path narrower than the underlay changes a route: the thousands of on-link peers
    // resolved at start must not each cost a pass.
    const narrow = new Map<string, number>()
    p.on('changed', path => {
      const was = narrow.get(path.node)
      const now = path.mtu !== undefined && path.mtu < underlayMtu ? path.mtu : undefined
      if (now !== undefined) {
        narrow.set(path.node, now)
        this.log.warn({ peer: path.node, peerUnderlay: path.ip, pathMtu: now, underlayMtu, blackHole: path.blackHole === true }, 'path toward peer is narrower than the underlay; its pod routes get a smaller MTU')
      } else {
        narrow.delete(path.node)
        if (path.unknown !== undefined) this.log.info({ peer: path.node, peerUnderlay: path.ip, reason: path.unknown }, 'path MTU toward peer unknown; assuming the underlay\'s')
        else this.log.debug({ peer: path.node, peerUnderlay: path.ip, pathMtu: path.mtu, onLink: path.onLink }, 'path MTU toward peer')
      }
      if (was !== now) this.reconciler?.trigger('path-mtu')
    })
    p.on('probeFailed', f => this.log.warn({ peer: f.node, peerUnderlay: f.ip, error: f.error.message }, 'path MTU probe failed; will try again at the next interval'))
    // The first pass hands the peers to the prober.
    this.reconciler?.trigger('path-mtu')
    return p
  }

  /**
   * node → path MTU, for the desired state; every peer's endpoint handed to the prober first (only
   * when the records changed: the watcher hands out a new map then). The same map object comes
   * back while nothing changed, so the desired state is not re-derived on a quiet resync.
   */
  private pathMtus (): ReadonlyMap<string, number> {
    const p = this.pathMtu
    if (p === undefined) return NO_PATH_MTUS
    if (this.pathPeersOf !== this.nodes) {
      const ips = new Map<string, string>()
      for (const n of this.nodes.values()) {
        if (n.name === this.opts.nodeName) continue
        try { ips.set(n.name, parseEndpoint(n.endpoint).ip) } catch {}
      }
      p.setPeers(ips)
      this.pathPeersOf = this.nodes
    }
    return this.knownPathMtus()
  }

  private knownPathMtus (): ReadonlyMap<string, number> {
    const p = this.pathMtu
    if (p === undefined) return NO_PATH_MTUS
    if (this.knownPaths?.revision !== p.revision) {
      this.knownPaths = { revision: p.revision, mtus: new Map([...p.known()].flatMap(([node, path]) => path.mtu === undefined ? [] : [[node, path.mtu]])) }
    }
    return this.knownPaths.mtus
  }

  /**
   * Without --public-address the endpoint follows the interface's address: the data plane takes
   * the new one at once (VXLAN's local IP), the record as soon as etcd accepts it.
   */
  private followUnderlay (store: Store, rtnl: Rtnl, identity: NodeIdentity): UnderlayFollower | undefined {
    const o = this.opts
    if (o.publicAddress !== undefined || this.lease === undefined || this.config === undefined) return undefined
    const port = this.config.backend.wireguard.port
    const endpoint = (ip: string): string => formatEndpoint({ ip, port })
    const f = new UnderlayFollower({ rtnl, ...(o.publicInterface !== undefined ? { interface: o.publicInterface } : {}), lease: this.lease, port, underlay: identity.underlay })
    f.on('moved', m => {
      // etcd's connections left from the old address, which is gone: redial before publishing.
      dropConnections(store.client)
      if (this.self !== undefined) this.self = { ...this.self, underlayIp: m.to.ip }
      this.log.warn({ old: endpoint(m.from.ip), new: endpoint(m.to.ip), underlayInterface: m.to.ifname }, 'underlay address changed; following it')
      this.reconciler?.trigger('underlay')
      this.services?.trigger('nodes')
    })
    f.on('published', p => {
      this.metrics.endpointChanges.inc()
      this.log.info({ old: p.from, new: p.to, generation: p.generation }, 'new endpoint published')
    })
    f.on('waiting', w => this.log.warn({ endpoint: endpoint(w.underlay.ip), error: w.error.message }, 'underlay address gone and none to take yet; keeping the old endpoint'))
    f.on('publishFailed', e => {
      this.metrics.etcdErrors.inc({ op: 'publish' })
      // One line per attempt, without the stack: it repeats until etcd takes it.
      this.log.warn({ error: (e.error as Error).message, new: e.endpoint, retryInMs: e.retryInMs }, 'could not publish the new endpoint; will retry')
    })
    f.on('checkFailed', e => this.log.warn({ err: e.error, retryInMs: e.retryInMs }, 'could not read the underlay addresses; will retry'))
    f.start()
    return f
  }

  private createReconciler (): Reconciler {
    const r = new Reconciler({ run: async (reason, signal) => await this.reconcile(reason, signal), resyncIntervalMs: this.opts.resyncIntervalMs, coalesceMs: 1 })
    r.on('applied', e => {
      this.emit('passEnded')
      this.metrics.reconciles.inc({ result: 'ok' })
      this.metrics.reconcileDuration.observe(e.durationMs / 1000)
      if (e.changes.length > 0) {
        this.metrics.changes.inc(e.changes.length)
        this.metrics.convergenceLag.observe((Date.now() - e.triggeredAt) / 1000)
        this.log.info({ reason: e.reason, changes: e.changes, durationMs: e.durationMs }, 'kernel updated')
        this.emit('applied', { changes: e.changes })
      }
      // While etcd is away only the status timer retries (a failing write per pass would add load).
      if (!this.degraded) this.status?.trigger()
    })
    r.on('failed', e => {
      if (!isPassDeadlineError(e.error)) this.emit('passEnded')
      this.metrics.reconciles.inc({ result: 'error' })
      this.log.error({ err: e.error, reason: e.reason, attempt: e.attempt, retryInMs: e.retryInMs }, 'reconcile failed; will retry')
    })
    return r
  }

  private createWatcher (store: Store): NodeWatcher {
    const w = store.watch()
    w.on('change', ev => {
      this.metrics.watchEvents.inc()
      // Before the pass: a view without this node's own record must not prune anything.
      this.registration?.observe(this.nodes, ev)
      this.nodes = ev.nodes
      this.synced = true
      if (ev.added.length + ev.updated.length + ev.removed.length > 0 || ev.relisted) {
        this.log.info({ added: ev.added, updated: ev.updated, removed: ev.removed, relisted: ev.relisted, revision: ev.revision }, 'node records changed')
      }
      this.reconciler?.trigger('watch')
      // A pod counts only inside its node's subnets: node records changing changes endpoints.
      this.services?.trigger('nodes')
    })
    this.followConflicts(w)
    w.on('rejected', r => { this.metrics.rejectedRecords.inc(); this.log.warn({ key: r.key, reason: r.reason }, 'etcd value rejected') })
    w.on('degraded', (e: unknown) => {
      if (!this.degraded) this.lastDegraded = { since: new Date().toISOString() }
      this.degraded = true
      this.metrics.degraded.set(1)
      this.metrics.etcdErrors.inc({ op: 'watch' })
      this.log.warn({ err: e }, 'etcd unreachable: keeping the last known state, pruning nothing')
    })
    w.on('recovered', () => {
      this.degraded = false
      if (this.lastDegraded !== undefined) this.lastDegraded = { ...this.lastDegraded, until: new Date().toISOString() }
      this.metrics.degraded.set(0)
      this.log.info('etcd reachable again')
      this.reconciler?.trigger('etcd-recovered')
    })
    return w
  }

  /** Conflicts are logged once each and counted; this node's own record losing one means it must yield. */
  private followConflicts (w: NodeWatcher): void {
    w.on('conflict', c => this.log.warn({ skipped: c.node, holder: c.holder, what: c.what, value: c.value }, `node record skipped: ${describeConflict(c)}`))
    w.on('change', ev => {
      this.conflicts = ev.conflicts
      countConflicts(this.metrics, ev.conflicts)
      if (this.ownClaims === undefined || this.refusal !== undefined) return
      const lost = ownClaimConflicts(this.ownClaims, { accepted: [...ev.nodes.values()], conflicts: ev.conflicts })
      if (lost.length === 0) return
      this.refusal = new IdentityClaimedError({ node: this.opts.nodeName, stateDir: this.opts.stateDir, phase: 'running', conflicts: lost })
      this.emit('fatal', { status: EXIT_STATUS.identityTaken, error: this.refusal })
    })
  }

  /**
   * A config written after start is never applied live (docs/decisions.md, "Config changes"):
   * the node says it runs an older revision (log, metric, status) until it is restarted.
   */
  private async watchConfig (store: Store): Promise<ConfigWatcher> {
    const w = store.watchConfig()
    w.on('changed', c => {
      this.configPending = c.revision
      this.metrics.configChanges.inc()
      this.metrics.configStale.set(1)
      this.log.warn({ running: store.configRevision, revision: c.revision, deleted: c.deleted, ...(c.error !== undefined ? { invalid: c.error.message } : {}) },
        'config changed in etcd; not applied: this node keeps running its config until podmeshd is restarted')
    })
    w.on('error', e => this.log.warn({ err: e }, 'config watch failed; reading the config and watching again'))
    await w.start()
    return w
  }

  private recordList (): readonly NodeRecord[] {
    if (this.nodeList?.of !== this.nodes) this.nodeList = { of: this.nodes, list: [...this.nodes.values()] }
    return this.nodeList.list
  }

  private createStatusReport (store: Store): StatusReport {
    return new StatusReport({
      client: store.client,
      prefix: store.prefix,
      node: this.opts.nodeName,
      snapshot: () => this.lease === undefined ? undefined : {
        generation: this.lease.record.generation,
        revision: this.watcher?.currentRevision ?? '0',
        configRevision: store.configRevision,
        ...(this.configPending !== undefined ? { configPending: this.configPending } : {}),
        degraded: this.degraded,
        ready: this.readiness().ready,
        ...(this.lastDegraded !== undefined ? { lastDegraded: this.lastDegraded } : {}),
        observed: this.lastObserved,
        ...(this.mtu !== undefined ? { mtu: this.mtuStatus(this.mtu) } : {}),
        ...(this.serviceStatus !== undefined ? { services: this.serviceStatus } : {}),
        nodes: this.recordList(),
        conflicts: this.conflicts,
        ...(this.pathMtu !== undefined ? { pathMtus: this.knownPathMtus() } : {})
      },
      onError: () => this.metrics.etcdErrors.inc({ op: 'status' })
    })
  }

  /** One level-triggered pass: full snapshot → desired → observe → plan → apply. */
  private async reconcile (reason: ReconcileReason, signal?: AbortSignal): Promise<{ changes: string[] }> {
    const config = this.config; const self = this.self; const kernel = this.kernel
    if (config === undefined || self === undefined || kernel === undefined) return { changes: [] }
    const d = this.desired.of({ config, nodes: this.nodes, self, pathMtus: this.pathMtus() })
    for (const s of d.skipped) this.log.warn({ peer: s.node, reason: s.reason }, 'node skipped')
    this.metrics.skippedNodes.set(d.skipped.length)
    // A watch event plans against what the last pass left in the kernel; every other pass
    // (resync, retry, recovery) reads the kernel, which is what repairs drift.
    const full = readsKernel(reason) || this.expected === undefined
    const observed = full ? await kernel.observe() : this.expected as ObservedState
    if (full) {
      this.lastObserved = observed
      this.updatePeerMetrics(d.transports)
      if (reason === 'resync') this.registration?.resync()
      if (reason === 'resync') void this.pathMtu?.check()
      if (reason === 'resync' && this.podNetwork !== undefined && this.rtnl !== undefined) {
        const repaired = await repairPodNetwork(this.rtnl, this.podNetwork)
        if (repaired.length > 0) this.log.warn({ repaired }, 'pod network drift repaired')
      }
    }
    // Prune only with a full, current view: never while etcd is away, never before the first list,
    // never while the own registration is in doubt or has just come back (etcd emptied or
    // restored: the view may be partial while the other nodes re-assert theirs).
    const prune = this.synced && !this.degraded && this.registration?.mayPrune === true
    const q = this.quiet
    const p = q !== undefined && q.desired === d.state && q.prune === prune && samePlanInput(observed, q.observed)
      ? q.plan
      : plan(d.state, observed, { prune })
    this.quiet = undefined
    this.expected = undefined
    // A pass abandoned at its deadline (its kernel read hung) must not apply a stale plan late.
    signal?.throwIfAborted()
    if (!planIsEmpty(p)) {
      const t0 = Date.now()
      await kernel.apply(p)
      this.metrics.applyDuration.observe((Date.now() - t0) / 1000)
    }
    this.expected = afterApply(observed, p, d.state)
    if (planIsEmpty(p)) this.quiet = { desired: d.state, observed, prune, plan: p }
    await this.followMtu(d.mtu)
    if (!this.applied && this.synced) {
      this.applied = true
      this.metrics.ready.set(1)
      this.log.info({ reason }, 'data plane applied; ready')
      this.emit('ready')
    }
    return { changes: describePlan(p) }
  }

  /**
   * Says each MTU change once (a peer lowering a device, naming its endpoint family; a config mtu
   * that a peer's path cannot carry), and makes new pods follow the pod MTU: conflist and bridge.
   */
  private async followMtu (m: MtuPlan): Promise<void> {
    const devices = { wireguard: this.opts.wgInterface, vxlan: this.opts.vxlanInterface }
    for (const c of mtuChanges(this.mtu, m)) {
      const device = devices[c.transport]
      if (c.kind === 'lowered-by-peer') {
        this.log.warn({ device, peer: c.node, endpointFamily: `IPv${c.family}`, mtu: c.mtu, fits: c.fits, ...(c.from !== undefined ? { from: c.from } : {}) }, 'a peer lowers the tunnel MTU: its path needs a smaller one')
      } else if (c.kind === 'changed') {
        this.log.info({ device, mtu: c.mtu, from: c.from }, 'tunnel MTU changed')
      } else {
        this.log.warn({ device, mtu: c.mtu, fits: c.fits, ...(c.node !== undefined ? { peer: c.node, endpointFamily: `IPv${c.family ?? '?'}` } : {}) },
          "the config's mtu does not fit a current peer's path: packets that size are dropped or fragmented on the way (podmeshctl init --mtu, or leave it unset)")
      }
    }
    this.mtu = m
    setMtu(this.metrics, m)
    const pod = this.podNetwork
    if (pod === undefined || this.rtnl === undefined || pod.mtu === m.pod) return
    const next = { ...pod, mtu: m.pod }
    // Kept only once written: a failed write fails the pass, and the retry writes again.
    const changes = await repairPodNetwork(this.rtnl, next)
    this.podNetwork = next
    this.log.warn({ mtu: m.pod, from: pod.mtu, changes }, 'pod MTU changed: new pods get it; running pods keep theirs (docs/operations.md, "MTU")')
  }

  private mtuStatus (m: MtuPlan): MtuStatus {
    const names = { wireguard: this.opts.wgInterface, vxlan: this.opts.vxlanInterface }
    // The narrowest paths first; the value stays small however many peers sit behind a WAN.
    const narrow = [...(m.narrow ?? [])].sort((a, b) => a.pathMtu - b.pathMtu || (a.node < b.node ? -1 : 1))
    return {
      pod: m.pod,
      devices: [m.wireguard, m.vxlan].flatMap(d => d === undefined ? [] : [{ device: names[d.transport], ...d }]),
      ...(narrow.length > 0 ? { narrow: narrow.slice(0, MAX_STATUS_NARROW) } : {}),
      ...(narrow.length > MAX_STATUS_NARROW ? { narrowOmitted: narrow.length - MAX_STATUS_NARROW } : {})
    }
  }

  private updatePeerMetrics (transports: ReadonlyMap<string, string>): void {
    const counts = { wireguard: 0, vxlan: 0 }
    for (const t of transports.values()) counts[t as 'wireguard' | 'vxlan']++
    this.metrics.peers.set({ transport: 'wireguard' }, counts.wireguard)
    this.metrics.peers.set({ transport: 'vxlan' }, counts.vxlan)
  }

  private * peerHandshakes (): Iterable<PeerHandshake> {
    const nameByKey = new Map([...this.nodes.values()].map(n => [n.publicKey ?? '', n.name]))
    for (const p of this.lastObserved?.wireguard?.peers ?? []) {
      const peer = nameByKey.get(p.publicKey)
      if (peer !== undefined) yield { peer, lastHandshake: p.lastHandshake }
    }
  }

  readiness (): Readiness {
    if (this.lease === undefined) return { ready: false, detail: 'no subnet lease yet' }
    const registration = this.registration?.readiness()
    if (registration !== undefined) return registration
    if (!this.applied) return { ready: false, detail: 'data plane not applied yet' }
    const r = this.reconciler
    const loop = r === undefined ? undefined : loopReadiness({ lastAppliedAt: r.lastAppliedAt, consecutiveFailures: r.consecutiveFailures, abandonedPasses: r.abandonedPasses, resyncIntervalMs: this.opts.resyncIntervalMs, now: Date.now() })
    if (loop !== undefined) return loop
    if (this.degraded) return { ready: true, detail: 'degraded: etcd unreachable, serving the last known state' }
    return { ready: true, detail: 'subnet held, data plane applied, etcd reachable' }
  }

  get isDegraded (): boolean { return this.degraded }
  get podCIDRs (): readonly string[] { return this.lease?.podCIDRs ?? [] }
  get observed (): ObservedState | undefined { return this.lastObserved }

  /**
   * Stops the loop. With `leave`, also removes the node from etcd and its tunnels from the kernel.
   * After a refusal (another node holds this node's key or MAC) the node's keys leave etcd too,
   * whatever stops it: it must not keep publishing what another node owns; the kernel is left as it is.
   */
  async stop (opts: { leave?: boolean } = {}): Promise<void> {
    if (this.stopping) return
    this.stopping = true
    const leave = opts.leave ?? this.opts.leave
    this.registration?.stop()
    this.pathMtu?.stop()
    await this.podPublisher?.stop()
    await this.services?.stop()
    await this.underlay?.stop()
    await this.reconciler?.stop()
    await this.status?.stop()
    await this.watcher?.stop()
    await this.configWatch?.stop().catch(() => undefined)
    const refused = this.refusal !== undefined
    if (leave || (refused && this.lease !== undefined)) {
      try {
        await this.lease?.release()
        this.log.info('node removed from etcd')
      } catch (e) {
        this.log.error({ err: e }, 'could not remove the node from etcd; its keys expire with the lease')
      }
    }
    if (leave) {
      await this.kernel?.teardown()
      if (this.rtnl !== undefined) await removePodNetwork(this.rtnl, { bridge: this.opts.cniBridge, network: this.opts.cniNetwork, confDir: this.opts.cniConfDir })
      if (this.config?.services !== undefined) {
        try {
          await removeServiceTable()
        } catch (e) {
          this.log.error({ err: e }, 'could not remove table inet podmesh')
        }
      }
      this.log.info('tunnels, routes, service rules and pod network removed')
    } else if (!refused) {
      // The lease keeps running in etcd until its TTL: a restart takes the keys over.
      await this.lease?.close()
    }
    await this.store?.close()
    this.rtnl?.close()
    await new Promise<void>(resolve => this.server === undefined ? resolve() : this.server.close(() => resolve()))
  }

  /** Retries an etcd-dependent step forever with capped backoff (systemd starts us before etcd may be up). */
  private async withEtcdRetry<T> (what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (e) {
        if (!isRetryableStoreError(e) || this.stopping) throw e
        const delay = backoffDelay(attempt, { initialMs: 250, maxMs: 2000 })
        this.metrics.etcdErrors.inc({ op: 'start' })
        // One line per attempt, without the stack: it repeats until etcd answers.
        this.log.warn({ error: (e as Error).message, step: what, attempt, retryInMs: delay }, 'etcd not reachable; retrying')
        await new Promise(resolve => setTimeout(resolve, delay))
      }
    }
  }
}

const NO_PATH_MTUS: ReadonlyMap<string, number> = new Map()

function isRetryableStoreError (e: unknown): boolean {
  return (e as { retryable?: boolean } | undefined)?.retryable === true
}

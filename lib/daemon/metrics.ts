// podmeshd's Prometheus metrics: one registry per daemon (so tests can run several in a process),
// stable names under podmesh_*. The daemon updates them from the events its parts emit.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { CLAIM_KINDS, type Conflict } from '../mesh/claims'
import type { MtuPlan } from '../mesh/desired'

/** One WireGuard peer's last handshake as the last kernel read saw it (epoch seconds, 0 = never). */
export interface PeerHandshake { peer: string, lastHandshake: number }

/**
 * `handshakes` is read at scrape time: per-peer gauges cost thousands of label updates, so they
 * are computed only when someone asks, never on every reconcile pass.
 */
export function createMetrics (handshakes: () => Iterable<PeerHandshake> = () => []) {
  const registry = new Registry()
  // The event-loop lag histogram samples on a timer: at prom-client's default 10 ms that timer alone
  // cost ~0.3 % of a core on an idle daemon (a third of the ≤ 1 % budget, issue #13); at 100 ms it
  // still catches every stall that matters to an operator (a stall delays the next sample).
  collectDefaultMetrics({ register: registry, prefix: 'podmesh_process_', eventLoopMonitoringPrecision: 100 })
  const m = {
    registry,
    peers: new Gauge({ name: 'podmesh_peers', help: 'Remote nodes in the desired state, by transport', labelNames: ['transport'], registers: [registry] }),
    handshakeAge: new Gauge({
      name: 'podmesh_peer_handshake_age_seconds',
      help: 'Seconds since the last WireGuard handshake with each peer (-1: never), as of the last kernel read',
      labelNames: ['peer'],
      registers: [registry],
      collect () {
        this.reset()
        const now = Date.now() / 1000
        for (const h of handshakes()) this.set({ peer: h.peer }, h.lastHandshake === 0 ? -1 : Math.max(0, Math.round(now - h.lastHandshake)))
      }
    }),
    reconciles: new Counter({ name: 'podmesh_reconcile_total', help: 'Reconcile passes by result', labelNames: ['result'], registers: [registry] }),
    reconcileDuration: new Histogram({ name: 'podmesh_reconcile_duration_seconds', help: 'Duration of a full reconcile pass', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    applyDuration: new Histogram({ name: 'podmesh_apply_duration_seconds', help: 'Duration of applying a non-empty plan to the kernel', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    changes: new Counter({ name: 'podmesh_kernel_changes_total', help: 'Kernel changes applied (peers, routes, addresses, FDB, neighbours)', registers: [registry] }),
    watchEvents: new Counter({ name: 'podmesh_watch_events_total', help: 'Coalesced node-record changes received from etcd', registers: [registry] }),
    rejectedRecords: new Counter({ name: 'podmesh_rejected_records_total', help: 'etcd values rejected by validation', registers: [registry] }),
    configChanges: new Counter({ name: 'podmesh_config_changes_total', help: 'Network configs written to etcd after the one this daemon runs (not applied: restart to run them)', registers: [registry] }),
    configStale: new Gauge({ name: 'podmesh_config_stale', help: '1 when etcd holds another network config than the one this daemon runs', registers: [registry] }),
    skippedNodes: new Gauge({ name: 'podmesh_skipped_nodes', help: 'Valid node records the last plan gave no peer and no route (e.g. endpoint is this node\'s own underlay)', registers: [registry] }),
    etcdErrors: new Counter({ name: 'podmesh_etcd_errors_total', help: 'etcd failures (watch, lease keepalive, status writes)', labelNames: ['op'], registers: [registry] }),
    convergenceLag: new Histogram({ name: 'podmesh_convergence_lag_seconds', help: 'Time from receiving an etcd change to its application in the kernel', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5], registers: [registry] }),
    endpointChanges: new Counter({ name: 'podmesh_endpoint_changes_total', help: 'New endpoints published because the underlay address changed', registers: [registry] }),
    degraded: new Gauge({ name: 'podmesh_degraded', help: '1 while etcd is unreachable and the last known state is kept', registers: [registry] }),
    ready: new Gauge({ name: 'podmesh_ready', help: '1 when the subnet is held and the data plane applied', registers: [registry] }),
    registrationHeld: new Gauge({ name: 'podmesh_registration_held', help: '1 while etcd holds this node\'s record and subnet leases as it published them', registers: [registry] }),
    registrationLost: new Counter({ name: 'podmesh_registration_lost_total', help: 'Times this node found its own registration gone or altered (reason: doubted, lost, taken)', labelNames: ['reason'], registers: [registry] }),
    registrationWrites: new Counter({ name: 'podmesh_registration_reasserted_total', help: 'Times this node wrote its own record and subnet leases again (how: reasserted on its lease, reacquired on a new one)', labelNames: ['how'], registers: [registry] }),
    restoresDetected: new Counter({ name: 'podmesh_etcd_restores_total', help: 'Times etcd came back with an older revision or another cluster ID', registers: [registry] }),
    etcdMemberAvoided: new Counter({ name: 'podmesh_etcd_member_avoided_total', help: 'Times an etcd member was set aside for a while because it did not answer in time, lost its leader, or left the watch silent', labelNames: ['member'], registers: [registry] }),
    restoreRemovals: new Counter({ name: 'podmesh_restore_removed_nodes_total', help: 'Node records removed after an etcd restore because no live node re-asserted them', registers: [registry] }),
    mtu: new Gauge({ name: 'podmesh_mtu_bytes', help: 'MTU the last pass gave each tunnel device in use (kind: wireguard, vxlan) and the pods (kind: pod)', labelNames: ['kind'], registers: [registry] }),
    services: new Gauge({ name: 'podmesh_services', help: 'Services in the last service rules that landed', registers: [registry] }),
    serviceEndpoints: new Gauge({ name: 'podmesh_service_endpoints', help: 'Endpoints (pod addresses behind services) in the last service rules that landed', registers: [registry] }),
    serviceSyncs: new Counter({ name: 'podmesh_service_syncs_total', help: 'Service rule passes (kind: full, partial, none, failed)', labelNames: ['kind'], registers: [registry] }),
    narrowPaths: new Gauge({ name: 'podmesh_narrow_paths', help: 'Peers behind a path narrower than their tunnel device needs, whose routes got a smaller MTU', registers: [registry] }),
    conflictingRecords: new Gauge({
      name: 'podmesh_conflicting_records',
      help: 'Node records skipped because an earlier record holds their WireGuard public key, VXLAN MAC or pod CIDR, by what they share',
      labelNames: ['what'],
      registers: [registry]
    })
  }
  // Every series exists from the start, so an alert on > 0 needs no absent() special case.
  for (const what of CLAIM_KINDS) m.conflictingRecords.set({ what }, 0)
  // A pass's first failure must show as an increase (rate/increase cannot see a series' first sample).
  for (const result of ['ok', 'error']) m.reconciles.inc({ result }, 0)
  return m
}

/** Sets the conflict gauge from the watch's current conflicts (one per shared claim). */
export function countConflicts (m: Metrics, conflicts: readonly Conflict[]): void {
  for (const what of CLAIM_KINDS) m.conflictingRecords.set({ what }, conflicts.filter(c => c.what === what).length)
}

/** Sets the MTU gauges from the last pass's plan; a device not in use has no series. */
export function setMtu (m: Metrics, plan: MtuPlan): void {
  m.mtu.reset()
  if (plan.wireguard !== undefined) m.mtu.set({ kind: 'wireguard' }, plan.wireguard.mtu)
  if (plan.vxlan !== undefined) m.mtu.set({ kind: 'vxlan' }, plan.vxlan.mtu)
  m.mtu.set({ kind: 'pod' }, plan.pod)
  m.narrowPaths.set(plan.narrow?.length ?? 0)
}

export type Metrics = ReturnType<typeof createMetrics>

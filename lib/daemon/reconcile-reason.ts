// Why a reconcile pass runs. The reason decides one thing: whether the pass may plan against
// the state the last pass left in the kernel (a watch event or a path MTU: only the inputs changed) or must read
// the kernel first (everything else: drift, a failed apply, etcd's return, a registration or
// underlay change). Triggers that share a pass keep the reason that reads the kernel.

export type ReconcileReason =
  | 'start' // the first pass after the daemon started
  | 'watch' // node records changed in etcd
  | 'resync' // the periodic pass that repairs drift
  | 'retry' // a previous pass failed
  | 'etcd-recovered' // etcd answers again after an outage
  | 'etcd-restored' // etcd came back with an older revision or another cluster ID
  | 'registration' // the node's own record or subnet leases were re-asserted or lost
  | 'underlay' // the node's underlay address changed
  | 'path-mtu' // a peer's path MTU changed: its routes' MTU follows

/** Whether a pass for `reason` must read the kernel rather than trust the expected state. */
export const readsKernel = (reason: ReconcileReason): boolean => reason !== 'watch' && reason !== 'path-mtu'

/** One pass for two triggers: the one that reads the kernel wins, else the first. */
export function mergeReasons (first: ReconcileReason, next: ReconcileReason): ReconcileReason {
  return readsKernel(first) || !readsKernel(next) ? first : next
}

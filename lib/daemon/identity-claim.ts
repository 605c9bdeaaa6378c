// A node never publishes a WireGuard public key or VXLAN MAC that another node's record holds:
// that almost always means its state dir was copied from that node (a cloned disk image), and
// publishing would hand the other node's traffic to it (cilium/cilium#19344). Checked before the
// lease is taken and on every watch change (two clones started at once: the later record loses).
// The refusal is a typed error; podmeshd exits with EXIT_STATUS.identityTaken (3), which systemd
// does not restart (RestartPreventExitStatus=3): the same files would be refused again.
import { join } from 'node:path'
import { CLAIM_LABEL, type Conflict, type OwnClaims, ownClaimConflicts } from '../mesh/claims'
import type { NodeWatcher } from '../store/node-watch'
import { PRIVATE_KEY_FILE } from '../dataplane/keys'
import { VXLAN_MAC_FILE } from '../dataplane/vxlan/mac'

/** 'start': found before the node published anything; 'running': its published record lost to an earlier one. */
export type RefusalPhase = 'start' | 'running'

export class IdentityClaimedError extends Error {
  readonly code = 'EIDENTITYCLAIMED'
  readonly node: string
  readonly phase: RefusalPhase
  /** This node's claims that earlier records hold (`node` is this node, `holder` the other). */
  readonly conflicts: Conflict[]
  /** The state-dir files to remove so that new, unique ones are made. */
  readonly files: string[]

  constructor (o: { node: string, stateDir: string, phase: RefusalPhase, conflicts: Conflict[] }) {
    const files = [
      ...(o.conflicts.some(c => c.what === 'publicKey') ? [join(o.stateDir, PRIVATE_KEY_FILE)] : []),
      ...(o.conflicts.some(c => c.what === 'vxlanMac') ? [join(o.stateDir, VXLAN_MAC_FILE)] : [])
    ]
    const holders = [...new Set(o.conflicts.map(c => c.holder))]
    const what = o.conflicts.map(c => `${CLAIM_LABEL[c.what]} ${c.value} (node ${c.holder})`).join(' and ')
    const found = o.phase === 'start'
      ? `refusing to publish this node's ${what}: already published by an earlier node.`
      : `this node's record lost its ${what} to the earlier claimant; removing this node's keys from etcd (the kernel is left as it is).`
    const other = holders.join(', ')
    super(`node ${o.node}: ${found} Most likely the state dir ${o.stateDir} was copied from node ${other} ` +
      `(a cloned disk image or state dir); podmeshd never takes over another node's peer. To fix: stop podmeshd on ${o.node}, ` +
      `remove ${files.join(' and ')} (new ones are made at the next start), then start podmeshd again; leave node ${other} as it is. ` +
      `(If instead node ${other}'s record is a copy of this node's, remove it with \`podmeshctl node remove ${other}\` and start podmeshd on ${o.node} again.)`)
    this.name = 'IdentityClaimedError'
    this.node = o.node
    this.phase = o.phase
    this.conflicts = o.conflicts
    this.files = files
  }
}
export const isIdentityClaimedError = (e: unknown): e is IdentityClaimedError => e instanceof IdentityClaimedError

/**
 * Before the lease: the node records as every running node judges them (a one-off list by a
 * NodeWatcher: the same parsing, subnet-ownership check and claim rule), and what of `self`
 * they already hold. Stops the watcher.
 */
export async function claimedAtStart (watcher: NodeWatcher, self: OwnClaims): Promise<Conflict[]> {
  try {
    await watcher.start()
    return ownClaimConflicts(self, { accepted: [...watcher.current().values()], conflicts: [...watcher.currentConflicts()] })
  } finally {
    await watcher.stop()
  }
}

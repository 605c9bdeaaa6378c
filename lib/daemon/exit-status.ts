// podmeshd's exit statuses: the contract with systemd (RestartPreventExitStatus) and operators.
// Documented in docs/operations.md.

export const EXIT_STATUS = {
  ok: 0,
  failed: 1,
  badOptions: 2,
  /** Another node already publishes this node's WireGuard key or VXLAN MAC (a cloned state dir). */
  identityTaken: 3,
  /** Another node took this node's subnet while this node's registration was gone; a restart allocates a new one. */
  subnetTaken: 4
} as const

export type ExitStatus = typeof EXIT_STATUS[keyof typeof EXIT_STATUS]

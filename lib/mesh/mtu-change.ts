// What changed in the tunnel MTUs between two passes, as data the daemon logs once per change:
// a peer that holds a device below the node's own-family MTU (named with its endpoint family),
// a device MTU that moved, and a config mtu that a current peer's path cannot carry. Pure.

import type { Family } from '../ipam/cidr'
import type { MtuPlan, Transport } from './desired'
import { overrideTooLarge } from './mtu'

export type MtuChange =
  | { kind: 'lowered-by-peer', transport: Transport, node: string, family: Family, mtu: number, fits: number, from?: number }
  | { kind: 'changed', transport: Transport, mtu: number, from: number }
  | { kind: 'override-too-large', transport: Transport, mtu: number, fits: number, node?: string, family?: Family }

const TRANSPORTS: readonly Transport[] = ['wireguard', 'vxlan']

export function mtuChanges (before: MtuPlan | undefined, after: MtuPlan): MtuChange[] {
  const out: MtuChange[] = []
  for (const transport of TRANSPORTS) {
    const a = after[transport]
    if (a === undefined) continue
    const b = before?.[transport]
    const from = b !== undefined && b.mtu !== a.mtu ? { from: b.mtu } : {}
    if (a.limitedBy !== undefined && (b?.limitedBy?.node !== a.limitedBy.node || b.fits !== a.fits)) {
      out.push({ kind: 'lowered-by-peer', transport, node: a.limitedBy.node, family: a.limitedBy.family, mtu: a.mtu, fits: a.fits, ...from })
    } else if (b !== undefined && b.mtu !== a.mtu) {
      out.push({ kind: 'changed', transport, mtu: a.mtu, from: b.mtu })
    }
    if (overrideTooLarge(a) && !(b !== undefined && overrideTooLarge(b) && b.fits === a.fits)) {
      out.push({ kind: 'override-too-large', transport, mtu: a.mtu, fits: a.fits, ...(a.limitedBy !== undefined ? { node: a.limitedBy.node, family: a.limitedBy.family } : {}) })
    }
  }
  return out
}

// The record generations this node has seen: the current one of every node in its view and, for
// nodes that left it, the last one (bounded, oldest forgotten first). After an etcd restore this
// is the evidence that a restored record is no newer than what its node had published before, so
// no live node re-asserted it (lib/store/restore-sweep.ts). No I/O.

import type { NodeRecord } from '../store/node-record'

/** Nodes that left are remembered this many at most. */
const DEFAULT_LIMIT = 10_000

export class GenerationMemory {
  private readonly departed = new Map<string, number>()

  constructor (private readonly limit = DEFAULT_LIMIT) {}

  /** One change of the view: `removed` names left it (their last record is in `previous`), `added` came (back). */
  observe (previous: ReadonlyMap<string, NodeRecord>, change: { added: readonly string[], removed: readonly string[] }): void {
    for (const name of change.added) this.departed.delete(name)
    for (const name of change.removed) {
      const rec = previous.get(name)
      if (rec === undefined) continue
      this.departed.delete(name) // re-inserted last: the newest departure is forgotten last
      this.departed.set(name, rec.generation)
      if (this.departed.size > this.limit) {
        const oldest = this.departed.keys().next().value
        if (oldest !== undefined) this.departed.delete(oldest)
      }
    }
  }

  /** Every node's last known generation: those in `current`, and those that left. */
  known (current: ReadonlyMap<string, NodeRecord>): Map<string, number> {
    const out = new Map(this.departed)
    for (const [name, rec] of current) out.set(name, rec.generation)
    return out
  }
}

import t from 'tap'
import { GenerationMemory } from '../../lib/daemon/generation-memory'
import type { NodeRecord } from '../../lib/store/node-record'

const rec = (name: string, generation: number): NodeRecord =>
  ({ v: 1, name, generation, endpoint: '192.0.2.1:51820', podCIDRs: ['10.244.1.0/24'], mtu: 1420 })
const view = (...recs: NodeRecord[]): Map<string, NodeRecord> => new Map(recs.map(r => [r.name, r]))

t.test('current generations, and the last one of nodes that left', async t => {
  const m = new GenerationMemory()
  const v1 = view(rec('a', 1), rec('b', 4), rec('c', 2))
  m.observe(new Map(), { added: ['a', 'b', 'c'], removed: [] })
  t.strictSame(m.known(v1), new Map([['a', 1], ['b', 4], ['c', 2]]))
  const v2 = view(rec('a', 3), rec('c', 2))
  m.observe(v1, { added: [], removed: ['b'] })
  t.strictSame(m.known(v2), new Map([['b', 4], ['a', 3], ['c', 2]]), 'b left at generation 4')
  const v3 = view(rec('a', 3), rec('b', 0), rec('c', 2))
  m.observe(v2, { added: ['b'], removed: [] })
  t.strictSame(m.known(v3).get('b'), 0, 'back: its current generation counts, not the departed one')
})

t.test('departed nodes are bounded, the oldest forgotten first', async t => {
  const m = new GenerationMemory(2)
  const all = view(rec('a', 1), rec('b', 2), rec('c', 3))
  m.observe(all, { added: [], removed: ['a'] })
  m.observe(all, { added: [], removed: ['b'] })
  m.observe(all, { added: [], removed: ['c'] })
  t.strictSame(m.known(new Map()), new Map([['b', 2], ['c', 3]]))
})

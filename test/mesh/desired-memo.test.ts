// DesiredMemo: the same inputs (the very objects) give back the previous desired state; any
// input that is another object — a changed record set, identity, config or path MTUs — gives
// desiredState's fresh answer for it.

import t from 'tap'
import { DesiredMemo } from '../../lib/mesh/desired-memo'
import { desiredState } from '../../lib/mesh/desired'
import type { NodeRecord } from '../../lib/store/node-record'
import { config, node, nodes, self } from '../fixtures/mesh'

const mapOf = (records: readonly NodeRecord[]): ReadonlyMap<string, NodeRecord> => new Map(records.map(n => [n.name, n]))

t.test('DesiredMemo', async t => {
  const base = { config: config(), nodes: mapOf(nodes), self: self(), pathMtus: new Map<string, number>() }
  const cases: Array<{ name: string, next: typeof base }> = [
    { name: 'a record changed (a new map from the watcher)', next: { ...base, nodes: mapOf([...nodes.slice(0, 3), node(4, { endpoint: '192.0.2.99:51820' })]) } },
    { name: 'a node joined', next: { ...base, nodes: mapOf([...nodes, node(5)]) } },
    { name: 'a node left', next: { ...base, nodes: mapOf(nodes.slice(0, 3)) } },
    { name: 'the underlay MTU changed (a new identity)', next: { ...base, self: self({ underlayMtu: 1400 }) } },
    { name: 'a narrower path became known', next: { ...base, pathMtus: new Map([['node-3', 1300]]) } },
    { name: 'another config', next: { ...base, config: config({ type: 'vxlan' }) } }
  ]
  for (const c of cases) {
    t.test(c.name, async t => {
      const memo = new DesiredMemo()
      const first = memo.of(base)
      t.equal(memo.of({ ...base }), first, 'the same input objects: the same desired state, not re-derived')
      const next = memo.of(c.next)
      t.not(next, first, 'a changed input is derived again')
      t.strictSame(next, desiredState(c.next.config, c.next.nodes.values(), { ...c.next.self, pathMtus: c.next.pathMtus }), 'exactly what desiredState says')
      t.notSame(next.state, first.state, 'and the change shows in the state')
    })
  }
})

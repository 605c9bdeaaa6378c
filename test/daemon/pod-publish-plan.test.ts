// The plan that makes pods/<node>/ equal to the spool: table of cases, structural comparison.
import t from 'tap'
import { planPodKeys, planEmpty, type PodKeysPlan } from '../../lib/daemon/pod-publish-plan'
import type { StoredPod } from '../../lib/store/node-pods'

const L = '7587'
const cases: Array<{ name: string, desired: Array<[string, string]>, stored: Array<[string, StoredPod]>, want: PodKeysPlan }> = [
  { name: 'nothing anywhere', desired: [], stored: [], want: { put: [], del: [] } },
  { name: 'a new pod', desired: [['a', 'A']], stored: [], want: { put: [{ id: 'a', value: 'A' }], del: [] } },
  { name: 'as published', desired: [['a', 'A']], stored: [['a', { value: 'A', lease: L }]], want: { put: [], del: [] } },
  { name: 'value changed (labels)', desired: [['a', 'A2']], stored: [['a', { value: 'A', lease: L }]], want: { put: [{ id: 'a', value: 'A2' }], del: [] } },
  { name: 'on an old lease (restart)', desired: [['a', 'A']], stored: [['a', { value: 'A', lease: '1' }]], want: { put: [{ id: 'a', value: 'A' }], del: [] } },
  { name: 'on no lease (written by hand)', desired: [['a', 'A']], stored: [['a', { value: 'A', lease: '0' }]], want: { put: [{ id: 'a', value: 'A' }], del: [] } },
  { name: 'pod gone', desired: [], stored: [['a', { value: 'A', lease: L }]], want: { put: [], del: ['a'] } },
  { name: 'a key no report names', desired: [['b', 'B']], stored: [['x/y', { value: '?', lease: L }], ['b', { value: 'B', lease: L }], ['a', { value: 'A', lease: L }]], want: { put: [], del: ['a', 'x/y'] } }
]
for (const c of cases) {
  t.test(c.name, async t => {
    const plan = planPodKeys(new Map(c.desired), new Map(c.stored), L)
    t.strictSame(plan, c.want)
    t.equal(planEmpty(plan), c.want.put.length === 0 && c.want.del.length === 0)
  })
}

import t from 'tap'
import { loopReadiness, STALL_INTERVALS } from '../../lib/daemon/loop-health'

const resync = 30_000
const base = { lastAppliedAt: 1_000_000, consecutiveFailures: 0, abandonedPasses: 0, resyncIntervalMs: resync }

t.test('loop readiness', async t => {
  const cases: Array<{ name: string, state: Parameters<typeof loopReadiness>[0], ready: boolean, detail?: RegExp }> = [
    { name: 'a pass just completed', state: { ...base, now: base.lastAppliedAt + 1 }, ready: true },
    { name: 'no pass yet (the start-up rules decide)', state: { ...base, lastAppliedAt: undefined, now: 1e12 }, ready: true },
    { name: 'exactly at the limit', state: { ...base, now: base.lastAppliedAt + STALL_INTERVALS * resync }, ready: true },
    { name: 'past the limit: stuck', state: { ...base, now: base.lastAppliedAt + STALL_INTERVALS * resync + 1 }, ready: false, detail: /no reconcile pass completed for 90 s \(limit 90 s\): the loop is stuck/ },
    { name: 'failing passes', state: { ...base, consecutiveFailures: 2, now: base.lastAppliedAt + 1 }, ready: false, detail: /last 2 reconcile\(s\) failed$/ },
    { name: 'a pass abandoned at the deadline is named', state: { ...base, consecutiveFailures: 1, abandonedPasses: 1, now: base.lastAppliedAt + 1 }, ready: false, detail: /1 pass\(es\) abandoned/ }
  ]
  for (const c of cases) {
    const r = loopReadiness(c.state)
    t.equal(r === undefined, c.ready, c.name)
    if (c.detail !== undefined) t.match(r?.detail, c.detail, `${c.name}: detail`)
  }
})

import t from 'tap'
import { Reconciler, backoffDelay, isPassDeadlineError } from '../../lib/daemon/reconciler'
import { mergeReasons, readsKernel, type ReconcileReason } from '../../lib/daemon/reconcile-reason'

t.test('backoff doubles and caps', async t => {
  const b = { initialMs: 100, maxMs: 1000 }
  t.strictSame([1, 2, 3, 4, 5, 6].map(a => backoffDelay(a, b)), [100, 200, 400, 800, 1000, 1000])
})

t.test('a burst of triggers shares one pass', async t => {
  const reasons: string[] = []
  const r = new Reconciler({ run: async reason => { reasons.push(reason); return { changes: [] } }, resyncIntervalMs: 60_000, coalesceMs: 20 })
  for (let i = 0; i < 50; i++) r.trigger('watch')
  await new Promise(resolve => setTimeout(resolve, 5))
  await r.settled()
  t.strictSame(reasons, ['watch'])
  await r.stop()
})

t.test('coalesced triggers keep the kernel read any of them asked for', async t => {
  const reasons: string[] = []
  const r = new Reconciler({ run: async reason => { reasons.push(reason); return { changes: [] } }, resyncIntervalMs: 60_000, coalesceMs: 20 })
  r.trigger('watch'); r.trigger('resync'); r.trigger('watch')
  await new Promise(resolve => setTimeout(resolve, 5))
  await r.settled()
  t.strictSame(reasons, ['resync'], 'a resync folded into a watch pass still reads the kernel')
  await r.stop()
})

t.test('reason merging', async t => {
  const cases: Array<[ReconcileReason, ReconcileReason, ReconcileReason]> = [
    ['watch', 'watch', 'watch'],
    ['watch', 'resync', 'resync'],
    ['resync', 'watch', 'resync'],
    ['registration', 'underlay', 'registration'],
    ['watch', 'etcd-restored', 'etcd-restored']
  ]
  for (const [a, b, want] of cases) t.equal(mergeReasons(a, b), want, `${a} + ${b}`)
  t.equal(readsKernel('watch'), false)
  for (const r of ['start', 'resync', 'retry', 'etcd-recovered', 'etcd-restored', 'registration', 'underlay'] as const) t.equal(readsKernel(r), true, r)
})

t.test('never two passes at once; a trigger during a pass causes exactly one more', async t => {
  let active = 0; let maxActive = 0; let runs = 0
  let release!: () => void
  const r = new Reconciler({
    run: async () => {
      active++; runs++; maxActive = Math.max(maxActive, active)
      if (runs === 1) await new Promise<void>(resolve => { release = resolve })
      active--
      return { changes: [] }
    },
    resyncIntervalMs: 60_000,
    coalesceMs: 1
  })
  r.trigger('watch')
  await new Promise(resolve => setTimeout(resolve, 10))
  r.trigger('watch'); r.trigger('watch')
  release()
  await new Promise(resolve => setTimeout(resolve, 10))
  await r.settled()
  t.equal(maxActive, 1)
  t.equal(runs, 2)
  await r.stop()
})

t.test('a failed pass is retried with backoff and reported', async t => {
  let calls = 0
  const failures: number[] = []
  const r = new Reconciler({
    run: async () => { if (++calls < 3) throw new Error('wg set failed'); return { changes: ['x'] } },
    resyncIntervalMs: 60_000, coalesceMs: 1, backoff: { initialMs: 10, maxMs: 20 }
  })
  r.on('failed', e => failures.push(e.retryInMs))
  const applied = new Promise(resolve => r.once('applied', resolve))
  r.trigger('start')
  t.match(await applied, { changes: ['x'] })
  t.strictSame(failures, [10, 20])
  t.equal(r.consecutiveFailures, 0)
  await r.stop()
})

t.test('the periodic resync runs without any trigger', async t => {
  let runs = 0
  const r = new Reconciler({ run: async () => { runs++; return { changes: [] } }, resyncIntervalMs: 30, coalesceMs: 1 })
  r.start()
  await new Promise(resolve => setTimeout(resolve, 200))
  await r.stop()
  t.ok(runs >= 3, `resync ran ${runs} times in 200 ms at a 30 ms interval`)
})

t.test('a pass that never resolves fails at the deadline and the retry runs', async t => {
  let calls = 0
  let firstSignal: AbortSignal | undefined
  const r = new Reconciler({
    run: async (_reason, signal) => {
      calls++
      if (calls === 1) { firstSignal = signal; return await new Promise<never>(() => {}) } // stuck for good
      return { changes: ['done'] }
    },
    resyncIntervalMs: 60_000,
    coalesceMs: 1,
    passDeadlineMs: 50,
    backoff: { initialMs: 10, maxMs: 10 }
  })
  const failed: unknown[] = []
  r.on('failed', e => failed.push(e.error))
  const applied = new Promise<string[]>(resolve => r.once('applied', e => resolve(e.changes)))
  t.equal(r.lastAppliedAt, undefined)
  r.trigger('start')
  const deadline = new Promise<string>(resolve => setTimeout(() => resolve('no pass completed within 5 s'), 5_000).unref())
  t.strictSame(await Promise.race([applied, deadline]), ['done'], 'the retry completed although the first pass never returns')
  t.equal(failed.length, 1)
  t.ok(isPassDeadlineError(failed[0]), 'the stuck pass failed with PassDeadlineError')
  t.equal(firstSignal?.aborted, true, 'the stuck pass was told it is abandoned')
  t.equal(r.abandonedPasses, 1, 'the abandoned pass is still counted')
  t.equal(r.consecutiveFailures, 0)
  t.type(r.lastAppliedAt, 'number')
  await r.stop()
})

t.test('a storm of triggers costs a bounded number of passes', async t => {
  let passes = 0
  const r = new Reconciler({ run: async () => { passes++; return { changes: [] } }, resyncIntervalMs: 60_000, coalesceMs: 1, passesPerSecond: 20, passBurst: 10 })
  const started = Date.now()
  // ~500 triggers a second for one second, each an instant pass without the bound.
  await new Promise<void>(resolve => {
    const tick = setInterval(() => {
      r.trigger('watch')
      if (Date.now() - started >= 1000) { clearInterval(tick); resolve() }
    }, 2)
  })
  await r.settled()
  const seconds = (Date.now() - started) / 1000
  t.ok(passes <= 10 + Math.ceil(seconds * 20) + 1, `${passes} passes in ${seconds.toFixed(2)} s (bound: a burst of 10, then 20/s)`)
  t.ok(passes >= 2, 'passes kept running during the storm')
  await r.stop()
})

t.test('an ordinary change right after a pass does not wait for the storm bound', async t => {
  const at: number[] = []
  const r = new Reconciler({ run: async () => { at.push(Date.now()); return { changes: [] } }, resyncIntervalMs: 60_000, coalesceMs: 1, passesPerSecond: 1, passBurst: 3 })
  for (let i = 0; i < 3; i++) {
    r.trigger('watch')
    await new Promise(resolve => setTimeout(resolve, 5))
    await r.settled()
  }
  t.equal(at.length, 3)
  // Outside the burst they would be ≥ 2 s apart (1 pass/s); 1.5 s leaves room for a loaded machine.
  t.ok((at[2] as number) - (at[0] as number) < 1500, `three passes within the burst ran back to back (${(at[2] as number) - (at[0] as number)} ms), not a second apart`)
  await r.stop()
})

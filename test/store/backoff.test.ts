import t from 'tap'
import { Backoff } from '../../lib/store/backoff'

t.test('grows to the cap, resets', async t => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0 })
  t.strictSame([1, 2, 3, 4, 5, 6].map(() => b.next()), [100, 200, 400, 800, 1000, 1000])
  b.reset()
  t.equal(b.next(), 100)
})

t.test('jitter stays within ±fraction and under the cap', async t => {
  const lo = new Backoff({ initialMs: 1000, maxMs: 5000, jitter: 0.2, random: () => 0 })
  const hi = new Backoff({ initialMs: 1000, maxMs: 5000, jitter: 0.2, random: () => 0.999999 })
  t.equal(lo.next(), 800)
  t.equal(hi.next(), 1200)
  for (let i = 0; i < 10; i++) t.ok(hi.next() <= 5000)
})

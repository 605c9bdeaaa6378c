import t from 'tap'
import { Watchdog, watchdogPeriodMs } from '../../lib/daemon/watchdog'

t.test('the period comes from WATCHDOG_USEC, for this process only', async t => {
  t.equal(watchdogPeriodMs({}, 42), undefined, 'not under a watchdog')
  t.equal(watchdogPeriodMs({ WATCHDOG_USEC: '120000000' }, 42), 120_000)
  t.equal(watchdogPeriodMs({ WATCHDOG_USEC: '120000000', WATCHDOG_PID: '42' }, 42), 120_000)
  t.equal(watchdogPeriodMs({ WATCHDOG_USEC: '120000000', WATCHDOG_PID: '7' }, 42), undefined, 'meant for another process')
  t.equal(watchdogPeriodMs({ WATCHDOG_USEC: '0' }, 42), undefined)
  t.equal(watchdogPeriodMs({ WATCHDOG_USEC: 'soon' }, 42), undefined)
})

t.test('pings follow completed passes, spaced to period/8', async t => {
  let pings = 0
  const w = new Watchdog(80_000, () => { pings++ })
  t.equal(pings, 0, 'no pass, no ping: nothing pings on its own')
  w.passEnded(0)
  t.equal(pings, 1, 'the first pass pings')
  for (let now = 1; now < 10_000; now += 2) w.passEnded(now) // a storm: 5,000 passes in 10 s
  t.equal(pings, 1, 'a storm of passes inside period/8 sends no more')
  w.passEnded(10_000)
  t.equal(pings, 2)
  w.passEnded(40_000) // the next resync pass, after a quiet spell
  t.equal(pings, 3)
})

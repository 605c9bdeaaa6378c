// podmeshd's metrics: series the alerts need exist from the start; the MTU gauges follow the
// last pass's plan (devices in use, the pods' MTU, narrow paths), and a device that goes out of
// use loses its series (a stale 1440 would mislead a dashboard).
import t from 'tap'
import { createMetrics, setMtu } from '../../lib/daemon/metrics'

const series = async (m: ReturnType<typeof createMetrics>, name: string): Promise<Record<string, number>> => {
  const got = await m.registry.getSingleMetric(name)?.get()
  if (got === undefined) throw new Error(`${name} is not registered`)
  return Object.fromEntries(got.values.map(v => [String(v.labels.kind ?? ''), v.value]))
}

t.test('reconcile results exist at 0 from the start, so the first failure is an increase', async t => {
  const m = createMetrics()
  const text = await m.registry.metrics()
  t.match(text, /^podmesh_reconcile_total\{result="error"\} 0$/m)
  t.match(text, /^podmesh_reconcile_total\{result="ok"\} 0$/m)
})

t.test('MTU gauges', async t => {
  const m = createMetrics()
  setMtu(m, {
    wireguard: { transport: 'wireguard', mtu: 1420, fits: 1420, limitedBy: { node: 'node-3', family: 6 } },
    vxlan: { transport: 'vxlan', mtu: 1450, fits: 1450 },
    pod: 1420,
    narrow: [{ node: 'node-4', pathMtu: 1400, routeMtu: 1340 }]
  })
  t.strictSame(await series(m, 'podmesh_mtu_bytes'), { wireguard: 1420, vxlan: 1450, pod: 1420 })
  t.strictSame(await series(m, 'podmesh_narrow_paths'), { '': 1 })

  setMtu(m, { wireguard: { transport: 'wireguard', mtu: 1440, fits: 1440 }, pod: 1440 })
  t.strictSame(await series(m, 'podmesh_mtu_bytes'), { wireguard: 1440, pod: 1440 }, 'vxlan out of use: no series')
  t.strictSame(await series(m, 'podmesh_narrow_paths'), { '': 0 })
  t.match(await m.registry.metrics(), /^podmesh_mtu_bytes\{kind="wireguard"\} 1440$/m, 'exposed in the text format')
})

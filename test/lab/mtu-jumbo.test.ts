// Issue #12, acceptance 2: a jumbo underlay (MTU 9000 on the hub bridge and both ends of every
// node's veth). The tunnel devices and the pods follow the table (WireGuard 8940, VXLAN 8950 over
// IPv4), and a don't-fragment ping of the pod MTU passes on both pod families.
import t from 'tap'
import { Lab, waitFor, type LabNode } from './cluster'
import { dfPing, linkMtu } from './traffic'
import { tunnelMtu } from '../../lib/mesh/mtu'

t.setTimeout(8 * 60_000)

for (const backend of ['wireguard', 'vxlan'] as const) {
  t.test(`${backend} on a 9000-byte underlay`, async t => {
    const lab = await Lab.create({ nodes: 2, podsPerNode: 1, backend, dualStack: true, underlayMtu: 9000 })
    t.teardown(async () => { await lab.destroy() })
    const [a, b] = lab.nodes as [LabNode, LabNode]
    const want = tunnelMtu(backend, 4, 9000)
    const dev = (n: LabNode): string => backend === 'wireguard' ? n.wgIf : `${n.wgIf}x`
    for (const n of [a, b]) {
      t.equal(await linkMtu(n.ns, 'eth0'), 9000, `${n.name} underlay`)
      t.equal(await linkMtu(n.ns, dev(n)), want, `${n.name} ${backend} device`)
      t.equal(await linkMtu(n.pods[0]!.ns, 'eth0'), want, `${n.name}'s pod`)
    }
    await waitFor('pods reach each other', 15_000, async () => (await lab.podMatrix()).length === 0)
    for (const [x, y] of [[a, b], [b, a]] as const) {
      for (const ip of y.pods[0]!.ips) {
        const fits = await dfPing(x.pods[0]!.ns, ip, want)
        t.ok(fits.ok, `${x.name} → ${y.name} ${ip}: DF ping of ${want} bytes passes`, { out: fits.out })
        const over = await dfPing(x.pods[0]!.ns, ip, want + 1)
        t.notOk(over.ok, `${x.name} → ${y.name} ${ip}: ${want + 1} bytes fail with DF`, { out: over.out })
      }
    }
  })
}

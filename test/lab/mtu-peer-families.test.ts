// Issue #12, acceptance 4: a cluster where some peers publish IPv4 endpoints and some IPv6 (a dual
// underlay, WireGuard). Each device MTU fits the largest overhead among its own peers' paths
// (a peer's outer family is its endpoint's) — asserted from `ip link` — and
// the peer that lowers it is visible (one log line, `podmeshctl status`). New pods follow through
// the conflist; a pod that runs already keeps its interface MTU, and the node answers its
// oversized don't-fragment packets with ICMP from the tunnel device, so TCP adapts (the claim
// docs/operations.md, "MTU", makes, checked here). The peer leaving raises the device again.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { Lab, waitFor, type LabNode } from './cluster'
import { dfPing, iperfMbps, linkMtu } from './traffic'
import { tunnelMtu } from '../../lib/mesh/mtu'

t.setTimeout(8 * 60_000)

const conflistMtu = (n: LabNode): number =>
  (JSON.parse(readFileSync(n.conflist, 'utf8')) as { plugins: Array<{ mtu?: number }> }).plugins[0]?.mtu ?? NaN
const logLines = (n: LabNode, msg: string): Array<Record<string, unknown>> =>
  readFileSync(n.logFile, 'utf8').split('\n').filter(l => l.includes(msg)).map(l => JSON.parse(l) as Record<string, unknown>)

t.test('IPv4 and IPv6 endpoints in one WireGuard cluster', async t => {
  // node-1 and node-2 publish IPv4 endpoints; node-3, added later, an IPv6 one.
  const lab = await Lab.create({ nodes: 2, podsPerNode: 1, backend: 'wireguard', dualStack: true, endpointFamilies: [4, 4, 6] })
  t.teardown(async () => { await lab.destroy() })
  const [n1, n2] = lab.nodes as [LabNode, LabNode]
  const v4 = tunnelMtu('wireguard', 4, 1500)
  const v6 = tunnelMtu('wireguard', 6, 1500)
  const old = n1.pods[0]!

  t.test('IPv4 peers only: the IPv4 MTU', async t => {
    for (const n of [n1, n2]) t.equal(await linkMtu(n.ns, n.wgIf), v4, `${n.name} device`)
    t.equal(await linkMtu(old.ns, 'eth0'), v4, 'the pod on node-1')
    t.equal(conflistMtu(n1), v4, "node-1's conflist")
  })

  const n3 = await lab.addNode(3)
  await n3.start()
  const far = await n3.addPod(1)

  t.test("a peer at an IPv6 endpoint joins: each device fits the largest overhead of its own peers' paths (ip link)", async t => {
    t.match(await lab.etcdctl('get', '--print-value-only', '/podmesh/default/nodes/node-3'), `"endpoint":"[${n3.underlayIp6}]:`)
    await waitFor('node-1 and node-2 lower their devices', 15_000, async () => (await linkMtu(n1.ns, n1.wgIf)) === v6 && (await linkMtu(n2.ns, n2.wgIf)) === v6)
    for (const n of [n1, n2]) t.equal(await linkMtu(n.ns, n.wgIf), v6, `${n.name} device: its path to node-3 has an IPv6 outer header`)
    // node-3 reaches both peers at their IPv4 endpoints: every packet it sends has an IPv4 outer header.
    t.equal(await linkMtu(n3.ns, n3.wgIf), v4, 'node-3 device: its peers are all at IPv4 endpoints')
    t.equal(await linkMtu(far.ns, 'eth0'), v4, "node-3's pod")
    await waitFor('pods reach each other', 15_000, async () => (await lab.podMatrix()).length === 0)
  })

  t.test('the peer that lowers it is logged once and shown by podmeshctl status', async t => {
    await waitFor("node-1's status names node-3", 15_000, async () => (await lab.ctl('status', 'node-1')).includes("node-3's IPv6 endpoint"))
    // A few resync passes later, still one line per node.
    await new Promise(resolve => setTimeout(resolve, 5000))
    for (const n of [n1, n2]) {
      const lines = logLines(n, 'a peer lowers the tunnel MTU')
      t.equal(lines.length, 1, `${n.name}: one line`)
      t.match(lines[0], { device: n.wgIf, peer: 'node-3', endpointFamily: 'IPv6', mtu: v6, from: v4 })
    }
    t.equal(logLines(n3, 'a peer lowers the tunnel MTU').length, 0, 'node-3: no peer lowers it')
    const text = await lab.ctl('status')
    t.match(text, `node-1: tunnel ${n1.wgIf} mtu ${v6} (node-3's IPv6 endpoint needs it); pods ${v6}`)
    t.comment(text.trim().split('\n').filter(l => l.includes('mtu')).join('\n'))
    const rows = JSON.parse(await lab.ctl('status', '-o', 'json')) as Array<{ node: string, mtu?: { pod: number, devices: Array<{ mtu: number, limitedBy?: unknown }> } }>
    t.match(rows.find(r => r.node === 'node-1')?.mtu, { pod: v6, devices: [{ mtu: v6, limitedBy: { node: 'node-3', family: 6 } }] })
    t.match(rows.find(r => r.node === 'node-3')?.mtu, { pod: v4, devices: [{ mtu: v4 }] })
    t.notOk(rows.find(r => r.node === 'node-3')?.mtu?.devices[0]?.limitedBy, 'node-3 names no peer')
    // doctor on node-1 runs the same function over the records.
    const doctor = JSON.parse(await n1.ctl('doctor', '--public-address', n1.publicIp, '-o', 'json')) as Array<{ check: string, result: string, detail: string }>
    t.match(doctor.find(c => c.check === 'underlay mtu'), { result: 'OK', detail: `mtu ${v6} (node-3's IPv6 endpoint needs it)` })
  })

  t.test('new pods follow through the conflist; a running pod keeps its MTU and learns the path from ICMP', async t => {
    t.equal(conflistMtu(n1), v6, "node-1's conflist rewritten")
    t.equal(logLines(n1, 'pod MTU changed').length, 1, 'the change of the pod MTU is logged once')
    const fresh = await n1.addPod(2)
    t.equal(await linkMtu(fresh.ns, 'eth0'), v6, 'a new pod on node-1 gets the lower MTU')
    t.equal(await linkMtu(old.ns, 'eth0'), v4, 'the running pod keeps its interface MTU')
    for (const ip of far.ips) {
      const tooBig = await dfPing(old.ns, ip, v4, 1)
      t.notOk(tooBig.ok, `${ip}: a DF packet of the old pod MTU does not cross`)
      // iputils: "Frag needed and DF set (mtu = 1420)" (IPv4), "Packet too big: mtu=1420" (IPv6).
      t.comment(tooBig.out.split('\n').find(l => /mtu/.test(l)) ?? tooBig.out)
      t.match(tooBig.out, new RegExp(`(Frag needed and DF set \\(mtu = ${v6}\\)|Packet too big: mtu=${v6})`), `${ip}: node-1 answers with ICMP naming ${v6}`)
      const fits = await dfPing(old.ns, ip, v6)
      t.ok(fits.ok, `${ip}: ${v6} bytes pass from the old pod`, { out: fits.out })
    }
    const mbps = await iperfMbps(lab, far.ns, far.ips[1]!, old.ns, 2)
    t.comment(`iperf3 old pod (MTU ${v4}) → node-3's pod over IPv6 pods: ${mbps.toFixed(0)} Mbit/s`)
    t.ok(mbps > 1, 'bulk TCP from the old pod crosses (PMTUD)')
  })

  t.test('the IPv6 peer leaves: the devices and the conflist go back up', async t => {
    await n3.stop()
    await lab.ctl('node', 'remove', n3.name)
    await waitFor('node-1 raises its device', 15_000, async () => (await linkMtu(n1.ns, n1.wgIf)) === v4)
    t.equal(await linkMtu(n2.ns, n2.wgIf), v4, 'node-2 too')
    await waitFor("node-1's conflist follows", 10_000, async () => conflistMtu(n1) === v4)
    t.match(logLines(n1, 'tunnel MTU changed')[0], { device: n1.wgIf, mtu: v4, from: v6 })
    // The pod made while the MTU was lower keeps its 1420, and node-1's pod bridge stays at it: a
    // larger DF packet toward that pod is answered with ICMP by node-1, not dropped by the bridge.
    const small = n1.pods[1]!
    t.equal(await linkMtu(n1.ns, 'podmesh-br0'), v6, "node-1's pod bridge stays at the small pod's MTU")
    for (const ip of small.ips) {
      const r = await dfPing(n2.pods[0]!.ns, ip, v4, 1)
      t.match(r.out, new RegExp(`(Frag needed and DF set \\(mtu = ${v6}\\)|Packet too big: mtu=${v6})`), `${ip}: a ${v4}-byte DF packet toward the ${v6} pod is answered with ICMP`)
      t.ok((await dfPing(n2.pods[0]!.ns, ip, v6)).ok, `${ip}: ${v6} bytes pass`)
    }
  })
})

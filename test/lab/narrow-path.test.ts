// Issue #12, acceptance 3: two racks joined through two routers by a 1400-byte link while every
// node's own interface is at 1500. Each node finds the path MTU toward the other rack's nodes
// and gives its pod routes toward them a smaller MTU (the tunnel's overhead below the path's),
// so bulk TCP between racks crosses without a single IP fragment on the narrow link (counted by
// nftables on the router), don't-fragment pings at the adapted size pass, and traffic inside a
// rack keeps the full MTU. Both backends, and mixed mode (VXLAN inside a rack, WireGuard across).
import t from 'tap'
import { Lab, nsExec, sleep, waitFor, type LabNode, type LabPod } from './cluster'

t.setTimeout(10 * 60_000)

/** The MTU metric of `node`'s route to `peer`'s IPv4 pod subnet (undefined: none, the device's). */
async function routeMtu (node: LabNode, peer: LabNode): Promise<number | undefined> {
  const cidr = JSON.parse((await node.lab.etcdctl('get', '--print-value-only', `/podmesh/default/nodes/${peer.name}`)).trim()).podCIDRs[0] as string
  const out = await nsExec(node.ns, ['ip', 'route', 'show', cidr])
  const m = /\bmtu (\d+)/.exec(out)
  return m === null ? undefined : Number(m[1])
}

const dfPing = async (from: LabPod, to: string, size: number): Promise<boolean> =>
  / 0% packet loss/.test(await nsExec(from.ns, ['ping', to.includes(':') ? '-6' : '-4', '-M', 'do', '-c', '2', '-i', '0.2', '-W', '2', '-s', String(size - (to.includes(':') ? 48 : 28)), to], { allowFail: true }))

async function iperf (client: LabPod, server: LabPod, ip: string): Promise<number> {
  const srv = nsExec(server.ns, ['iperf3', '-s', '-1', '-B', ip], { allowFail: true, timeoutMs: 30_000 })
  await sleep(500)
  const out = await nsExec(client.ns, ['iperf3', '-c', ip, '-t', '3', '-J'], { timeoutMs: 30_000 })
  await srv
  return (JSON.parse(out) as { end: { sum_received: { bytes: number, bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6
}

// The route MTU toward the other rack: 1400 less the outer headers, and for WireGuard a multiple
// of 16 (its padding): 1328; VXLAN 1350.
const variants: Array<{ name: string, backend: 'wireguard' | 'vxlan', adapted: number, mixed?: boolean }> = [
  { name: 'wireguard', backend: 'wireguard', adapted: 1328 },
  { name: 'vxlan', backend: 'vxlan', adapted: 1350 },
  { name: 'mixed', backend: 'wireguard', adapted: 1328, mixed: true }
]

for (const v of variants) {
  t.test(`${v.name}: two racks through a 1400-byte link`, async t => {
    const lab = await Lab.create({
      nodes: 4,
      podsPerNode: 1,
      backend: v.backend,
      racks: { rackB: [3, 4], narrowMtu: 1400 },
      ...(v.mixed === true ? { locations: ['a', 'a', 'b', 'b'], vxlanWithinLocation: true } : {})
    })
    t.teardown(async () => await lab.destroy())
    const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode, LabNode]
    const [p1, p2, p3] = [n1.pods[0], n2.pods[0], n3.pods[0]] as [LabPod, LabPod, LabPod]
    const adapted = v.adapted
    await waitFor(`node-1's route toward rack B to get mtu ${adapted}`, 30_000, async () => await routeMtu(n1, n3) === adapted)
    await waitFor(`node-3's route toward rack A to get mtu ${adapted}`, 30_000, async () => await routeMtu(n3, n1) === adapted)
    t.equal(await routeMtu(n1, n2), undefined, 'inside rack A: no route MTU (the device\'s)')
    // A first handshake inside rack B can still be under way here (the waits above name rack A's
    // routes): a bounded wait, then the assertion.
    await waitFor('every pod to reach every pod', 15_000, async () => (await lab.podMatrix()).length === 0).catch(() => undefined)
    t.same(await lab.podMatrix(), [], 'every pod reaches every pod')

    const before = await lab.narrowLinkFragments()
    for (const ip of p3.ips) {
      t.ok(await dfPing(p1, ip, adapted), `DF ping of ${adapted} bytes across the racks to ${ip}`)
      const mbit = await iperf(p1, p3, ip)
      t.ok(mbit > 1, `bulk TCP across the racks to ${ip}: ${mbit.toFixed(0)} Mbit/s`)
    }
    const after = await lab.narrowLinkFragments()
    t.same(after, before, `no IP fragment crossed the narrow link (v4 ${after.v4 - before.v4}, v6 ${after.v6 - before.v6})`)

    // What the node found is reported: its status value (podmeshctl status) and doctor on the node.
    await waitFor('podmeshctl status to name node-1\'s narrow paths', 30_000, async () =>
      (await lab.ctl('status')).includes(`node-1: narrow paths: node-3 1400 (routes ${adapted}), node-4 1400 (routes ${adapted})`))
    const rows = JSON.parse(await lab.ctl('status', 'node-1', '-o', 'json')) as Array<{ peers: Array<{ peer: string, pathMtu?: number }> }>
    t.match(Object.fromEntries(rows[0]!.peers.map(p => [p.peer, p.pathMtu])), { 'node-2': 1500, 'node-3': 1400, 'node-4': 1400 }, 'status shows the path MTU toward each peer (node-2 on the link: its MTU)')
    t.match(await lab.ctl('status', 'node-1'), /PATH MTU/, 'and the table has the column')
    const doctor = JSON.parse(await n1.ctl('doctor', '--public-address', n1.publicIp, '-o', 'json')) as Array<{ check: string, result: string, detail: string }>
    t.match(doctor.find(c => c.check === 'path mtu'), { result: 'OK', detail: `node-3 1400 (routes ${adapted}), node-4 1400 (routes ${adapted})` }, 'doctor on node-1 shows the paths its daemon found')

    const deviceMtu = Number(/mtu (\d+)/.exec(await nsExec(n1.ns, ['ip', 'link', 'show', v.backend === 'vxlan' ? `${n1.wgIf}x` : n1.wgIf]))?.[1])
    for (const ip of p2.ips) t.ok(await dfPing(p1, ip, deviceMtu), `inside the rack the full ${deviceMtu} bytes pass (DF) to ${ip}`)
  })
}

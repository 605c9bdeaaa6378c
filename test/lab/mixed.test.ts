// Mixed mode: WireGuard backend with vxlanWithinLocation — nodes sharing a location label talk
// over VXLAN, nodes in different locations over WireGuard; a node moving location moves its
// traffic between tunnels with at most a short interruption. The VXLAN side never floods.
import t from 'tap'
import { Lab, nsExec, sleep, type LabNode } from './cluster'
import { checkNoFlooding } from './vxlan-flooding'
import { pingAcrossRestart } from './restart-stream'

const txPackets = async (n: LabNode, dev: string): Promise<number> => {
  const out = await nsExec(n.ns, ['ip', '-s', '-j', 'link', 'show', 'dev', dev])
  return (JSON.parse(out) as Array<{ stats64: { tx: { packets: number } } }>)[0]!.stats64.tx.packets
}

t.setTimeout(10 * 60_000)
let lab: Lab
t.before(async () => {
  lab = await Lab.create({ nodes: 4, podsPerNode: 1, backend: 'wireguard', vxlanWithinLocation: true, locations: ['east', 'east', 'west', 'west'] })
})
t.teardown(async () => { await lab?.destroy() })

t.test('all pods reach all pods', async t => {
  await sleep(500)
  t.strictSame(await lab.podMatrix(), [])
})

t.test('within a location traffic is VXLAN, across locations WireGuard', async t => {
  const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode]
  const wg = n1.wgIf; const vx = `${n1.wgIf}x`
  let wg0 = await txPackets(n1, wg); let vx0 = await txPackets(n1, vx)
  t.ok(await lab.ping(n1.pods[0]!.ns, n2.pods[0]!.ips[0]!, { count: 20, interval: '0.05' }))
  t.ok(await txPackets(n1, vx) - vx0 >= 20, 'same location: the VXLAN device carried the pings')
  t.ok(await txPackets(n1, wg) - wg0 < 5, 'same location: WireGuard carried (almost) nothing')
  wg0 = await txPackets(n1, wg); vx0 = await txPackets(n1, vx)
  t.ok(await lab.ping(n1.pods[0]!.ns, n3.pods[0]!.ips[0]!, { count: 20, interval: '0.05' }))
  t.ok(await txPackets(n1, wg) - wg0 >= 20, 'other location: WireGuard carried the pings')
  t.ok(await txPackets(n1, vx) - vx0 < 5, 'other location: VXLAN carried (almost) nothing')
  t.match(await n1.routes(), new RegExp(`dev ${vx} proto 211`), 'a route over VXLAN exists')
  t.match(await n1.routes(), new RegExp(`dev ${wg} proto 211`), 'a route over WireGuard exists')
})

t.test('no VXLAN flooding on any node: learning off, no all-zero FDB entry, one entry per peer in its location', async t => {
  await checkNoFlooding(t, lab.nodes, n => lab.nodes.filter(p => p !== n && p.location === n.location))
})

// The interruption's length is a speed (bench:restart measures loss across restarts); here the
// stream runs until 5 s after n2 is ready in its new location, and must have resumed by then.
t.test('a node moving location moves its traffic: pods are interrupted briefly, then reach it again', async t => {
  const [n1, n2] = lab.nodes as [LabNode, LabNode]
  // n2 restarts in the other location: its record's label changes and every node re-plans. The
  // stream is stopped only 5 s after n2's first apply there, so it spans the move.
  const { ping, restartAt, firstApplyMs } = await pingAcrossRestart(n2, n1.pods[0]!.ns, n2.pods[0]!.ips[0]!, async () => {
    await n2.stop()
    n2.location = 'west'
    await n2.start()
  }, { intervalS: 0.05, marginMs: 5000 })
  t.ok(ping.firstReplyMs < restartAt, 'pings were answered before n2 stopped')
  t.ok(ping.firstReplyMs < firstApplyMs && firstApplyMs < ping.lastReplyMs, 'the stream spans n2\'s first apply in its new location: pings are answered again after it')
  t.ok(ping.inFlight <= 10, `${ping.inFlight} requests unanswered when the stream was stopped, 5 s after n2's first apply: traffic has resumed`)
  t.comment(`${ping.lost.length} of ${ping.sent} packets lost at 20/s: ${ping.lost.length * 50} ms of interruption (a figure, not a bound)`)
  const wg0 = await txPackets(n1, n1.wgIf)
  t.ok(await lab.ping(n1.pods[0]!.ns, n2.pods[0]!.ips[0]!, { count: 10, interval: '0.05' }))
  t.ok(await txPackets(n1, n1.wgIf) - wg0 >= 10, 'n1 → n2 now goes over WireGuard')
})

// Mixed mode: WireGuard backend with vxlanWithinLocation — nodes sharing a location label talk
// over VXLAN, nodes in different locations over WireGuard; a node moving location moves its
// traffic between tunnels with at most a short interruption. The VXLAN side never floods.
import t from 'tap'
import { spawn } from 'node:child_process'
import { Lab, nsExec, sleep, type LabNode } from './cluster'
import { checkNoFlooding } from './vxlan-flooding'

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
  const ping = spawn('ip', ['netns', 'exec', n1.pods[0]!.ns, 'ping', '-n', '-i', '0.05', '-W', '1', n2.pods[0]!.ips[0]!], { stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  ping.stdout.on('data', d => { out += String(d) })
  const done = new Promise(resolve => ping.once('close', resolve))
  const seqs = (): number[] => [...out.matchAll(/icmp_seq=(\d+)/g)].map(m => Number(m[1]))
  await sleep(1000)
  const beforeMove = Math.max(0, ...seqs())
  await n2.stop()
  // n2 restarts in the other location: its record's label changes and every node re-plans.
  n2.location = 'west'
  await n2.start()
  const readyAt = Math.max(0, ...seqs())
  await sleep(5000)
  ping.kill('SIGINT')
  await done
  const answered = seqs()
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
  const lost = Number(m?.[1]) - Number(m?.[2])
  t.ok(beforeMove > 0, `pings were answered before the move (up to icmp_seq ${beforeMove})`)
  t.ok(answered.some(s => s > readyAt), `pings are answered again after n2 is ready in its new location (icmp_seq > ${readyAt})`)
  t.comment(`${lost} packets lost at 20/s: ${lost * 50} ms of interruption (a figure, not a bound)`)
  const wg0 = await txPackets(n1, n1.wgIf)
  t.ok(await lab.ping(n1.pods[0]!.ns, n2.pods[0]!.ips[0]!, { count: 10, interval: '0.05' }))
  t.ok(await txPackets(n1, n1.wgIf) - wg0 >= 10, 'n1 → n2 now goes over WireGuard')
})

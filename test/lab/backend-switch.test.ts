// Switching a running cluster's backend: refused while nodes exist, unless forced; then the
// documented procedure (docs/decisions.md) — restart podmeshd node by node — moves every node
// to the new backend and removes the old one's device.
import t from 'tap'
import { Lab, nsExec, sleep, type LabNode } from './cluster'

t.setTimeout(5 * 60_000)
let lab: Lab
t.before(async () => { lab = await Lab.create({ nodes: 2, podsPerNode: 1, backend: 'wireguard' }) })
t.teardown(async () => { await lab?.destroy() })

const initVxlan = ['init', '--ipv4-cidr', '10.244.0.0/16', '--subnet-len4', '24', '--ipv6-cidr', 'fd00:10:244::/56', '--subnet-len6', '64', '--backend', 'vxlan']

t.test('changing the backend while nodes exist is refused with the reason', async t => {
  await t.rejects(lab.ctl(...initVxlan), /change the backend from wireguard to vxlan while 2 node record\(s\) exist.*--force/)
  t.match(await lab.ctl('config', 'show'), /backend.type +wireguard/, 'config unchanged')
})

t.test('the documented procedure: --force, then restart node by node', async t => {
  await lab.ctl(...initVxlan, '--force')
  for (const n of lab.nodes) {
    await n.stop()
    await n.start()
  }
  const [a, b] = lab.nodes as [LabNode, LabNode]
  let ok = false
  for (let i = 0; i < 40 && !ok; i++) { ok = await lab.ping(a.pods[0]!.ns, b.pods[0]!.ips[0]!, { timeoutS: 1 }); if (!ok) await sleep(100) }
  t.ok(ok, 'pods reach each other after the switch')
  for (const n of lab.nodes) {
    t.equal(await nsExec(n.ns, ['ip', 'link', 'show', n.wgIf], { allowFail: true }), '', `${n.name}: WireGuard device removed`)
    t.match(await nsExec(n.ns, ['ip', '-d', 'link', 'show', `${n.wgIf}x`]), /vxlan id 1 /, `${n.name}: VXLAN device up`)
  }
  t.strictSame(await lab.podMatrix(), [])
})

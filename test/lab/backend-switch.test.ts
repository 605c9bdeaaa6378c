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
  const before = JSON.parse(await lab.ctl('status', '-o', 'json')) as Array<{ configRevision?: string }>
  const oldRev = before[0]?.configRevision
  t.match(oldRev, /^\d+$/, 'each node publishes the config revision it runs')
  const written = JSON.parse(await lab.ctl(...initVxlan, '--force', '-o', 'json')) as { revision: string }
  // Nothing is applied live: every node says it runs the old config until it is restarted.
  for (const n of lab.nodes) {
    let logged = false
    for (let i = 0; i < 50 && !logged; i++) { logged = n.logTail(200).includes('config changed in etcd'); if (!logged) await sleep(100) }
    t.ok(logged, `${n.name}: logs config changed in etcd`)
    t.match(await nsExec(n.ns, ['curl', '-s', '-m', '2', `${n.metricsUrl}/metrics`]), /^podmesh_config_stale 1$/m, `${n.name}: podmesh_config_stale 1`)
    t.equal(await n.linkExists(n.wgIf), true, `${n.name}: still on WireGuard`)
  }
  let flagged = ''
  for (let i = 0; i < 100 && !flagged.includes(`etcd holds revision ${written.revision}`); i++) { flagged = await lab.ctl('status'); await sleep(100) }
  t.match(flagged, new RegExp(`^config: etcd holds revision ${written.revision}; .*runs ${oldRev ?? '?'}`, 'm'), 'podmeshctl status names the nodes on the old config')
  for (const n of lab.nodes) {
    await n.stop()
    await n.start()
  }
  const [a, b] = lab.nodes as [LabNode, LabNode]
  let ok = false
  for (let i = 0; i < 40 && !ok; i++) { ok = await lab.ping(a.pods[0]!.ns, b.pods[0]!.ips[0]!, { timeoutS: 1 }); if (!ok) await sleep(100) }
  t.ok(ok, 'pods reach each other after the switch')
  for (const n of lab.nodes) {
    t.equal(await n.linkExists(n.wgIf), false, `${n.name}: WireGuard device removed`)
    t.match(await nsExec(n.ns, ['ip', '-d', 'link', 'show', `${n.wgIf}x`]), /vxlan id 1 /, `${n.name}: VXLAN device up`)
  }
  t.strictSame(await lab.podMatrix(), [])
  let after: Array<{ node: string, configRevision?: string, configCurrent?: boolean }> = []
  for (let i = 0; i < 100; i++) {
    after = JSON.parse(await lab.ctl('status', '-o', 'json')) as typeof after
    if (after.every(r => r.configCurrent === true)) break
    await sleep(100)
  }
  t.strictSame(after.map(r => r.configRevision), lab.nodes.map(() => written.revision), 'after the restarts every node runs the new config')
})

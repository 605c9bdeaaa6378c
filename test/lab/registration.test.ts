// The control plane heals itself (issue #9): a node's own record and subnet leases are desired
// state. Deleted by hand, removed with podmeshctl, or lost to an etcd restore from an older
// snapshot, they come back without a restart and the matrix is full again; a dead node's
// restored record is removed; a subnet another node took makes the node not ready, and exit 4
// if the other node keeps it. Both backends for the wholesale deletion; the rest is backend-free.
import t from 'tap'
import { join } from 'node:path'
import { Lab, nsExec, sh, sleep, type LabNode, waitFor } from './cluster'
import { pingStream } from './mesh-suite'

t.setTimeout(10 * 60_000)
const PREFIX = '/podmesh/default/'

/** Every pod pings every other pod (1 s timeout each); true when all answered. */
const fullMatrix = async (lab: Lab): Promise<boolean> => (await lab.podMatrix()).length === 0

async function records (lab: Lab): Promise<Map<string, { podCIDRs: string[], generation: number }>> {
  const out = await lab.etcdctl('get', '--prefix', `${PREFIX}nodes/`, '--print-value-only')
  const recs = out.trim().split('\n').filter(l => l !== '').map(l => JSON.parse(l) as { name: string, podCIDRs: string[], generation: number })
  return new Map(recs.map(r => [r.name, r]))
}

const subnets = async (lab: Lab): Promise<Map<string, string[]>> =>
  new Map([...await records(lab)].map(([name, r]) => [name, r.podCIDRs]))

async function http (n: LabNode, path: string): Promise<{ code: string, body: string }> {
  const out = await nsExec(n.ns, ['curl', '-s', '-m', '2', '-w', '\n%{http_code}', `${n.metricsUrl}${path}`], { allowFail: true })
  const lines = out.trim().split('\n')
  return { code: lines.pop() ?? '', body: lines.join('\n') }
}

/** The value of one metric sample (name with labels, as exposed), or undefined. */
async function metric (n: LabNode, sample: string): Promise<number | undefined> {
  const body = (await http(n, '/metrics')).body
  const line = body.split('\n').find(l => l.startsWith(`${sample} `))
  return line === undefined ? undefined : Number(line.split(' ')[1])
}

/** Runs one etcd transaction (etcdctl txn syntax: compares, blank line, success ops, blank line, failure ops). */
async function etcdTxn (lab: Lab, success: string[]): Promise<void> {
  await sh('ip', ['netns', 'exec', lab.hub, 'env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', lab.etcdUrl, 'txn'],
    { input: `\n${success.join('\n')}\n\n\n` })
}

const subnetKey = (cidr: string): string => `${PREFIX}subnets/${cidr.replace('/', '-')}`
const pids = (lab: Lab): Array<number | undefined> => lab.nodes.map(n => n.daemon?.pid)

for (const backend of ['wireguard', 'vxlan'] as const) {
  t.test(`${backend}: every record and subnet lease deleted while 4 nodes run`, async t => {
    const lab = await Lab.create({ nodes: 4, podsPerNode: 1, backend, dualStack: true })
    t.teardown(async () => await lab.destroy())
    t.ok(await fullMatrix(lab), 'full matrix before')
    const before = await subnets(lab)
    const started = pids(lab)
    const [a, , , d] = lab.nodes as [LabNode, LabNode, LabNode, LabNode]
    const stream = pingStream(a.pods[0]!.ns, d.pods[0]!.ips[0]!, 60, 0.05)
    await sleep(500)
    const t0 = Date.now()
    await lab.etcdctl('del', '--prefix', `${PREFIX}nodes/`)
    await lab.etcdctl('del', '--prefix', `${PREFIX}subnets/`)
    await waitFor('every record back', 5000, async () => (await records(lab)).size === 4)
    const back = Date.now() - t0
    await waitFor('the full matrix', 5000 - back, async () => await fullMatrix(lab))
    const matrix = Date.now() - t0
    const ping = await stream
    t.comment(`deletion -> every record back: ${back} ms; -> full pod matrix: ${matrix} ms; ${ping.sent - ping.received} of ${ping.sent} pings at 20/s lost (${backend})`)
    t.strictSame(await subnets(lab), before, 'the same subnets as before')
    t.strictSame(pids(lab), started, 'no daemon restarted')
    t.ok(lab.nodes.every(n => n.daemon?.exitCode === null), 'every daemon still running')
    for (const n of lab.nodes) t.ok((await metric(n, 'podmesh_registration_reasserted_total{how="reasserted"}') ?? 0) >= 1, `${n.name} counted its re-assertion`)
  })
}

t.test('podmeshctl node remove, an etcd restore, a taken subnet', async t => {
  const lab = await Lab.create({ nodes: 4, podsPerNode: 1, backend: 'wireguard', dualStack: true })
  t.teardown(async () => await lab.destroy())
  const [, n2, n3, n4] = lab.nodes as [LabNode, LabNode, LabNode, LabNode]

  await t.test('podmeshctl node remove of a live node: it re-registers and is reachable again', async t => {
    const before = await subnets(lab)
    const t0 = Date.now()
    t.match(await lab.ctl('node', 'remove', n2.name), /warning: podmeshd on node-2 is running/, 'the command warns')
    await waitFor('node-2 back in etcd', 5000, async () => (await records(lab)).has(n2.name))
    await waitFor('the full matrix', 5000, async () => await fullMatrix(lab))
    t.comment(`node remove -> full matrix: ${Date.now() - t0} ms`)
    t.strictSame(await subnets(lab), before, 'node-2 kept its subnets')
  })

  await t.test('etcd restored from a snapshot: live nodes are back, the dead node is gone', async t => {
    const snap = join(lab.dir, 'before.db')
    await lab.snapshotEtcd(snap)
    // After the snapshot: node-5 joins, node-4 is decommissioned.
    const n5 = await lab.addNode(5)
    await n5.start()
    await n5.addPod(1)
    // `wg show peers` lists public keys, not node names: node-4's key is what must be gone.
    const n4Key = (await n4.wg('public-key')).trim()
    t.match(n4Key, /^[A-Za-z0-9+/]{43}=$/, 'node-4\'s public key')
    await n4.stop()
    await lab.ctl('node', 'remove', n4.name)
    lab.nodes.splice(lab.nodes.indexOf(n4), 1)
    await waitFor('the matrix with node-5 and without node-4', 10_000, async () => await fullMatrix(lab))
    const live = lab.nodes.map(n => n.name).sort()
    t.notOk((await records(lab)).has(n4.name), 'node-4 left etcd')

    const t0 = Date.now()
    await lab.restoreEtcd(snap)
    t.ok((await records(lab)).has(n4.name), 'the restore brought node-4\'s record back')
    await waitFor('live records back, the dead one gone', 10_000, async () => {
      const names = [...(await records(lab)).keys()].sort()
      return JSON.stringify(names) === JSON.stringify(live)
    })
    const settled = Date.now() - t0
    await waitFor('the full matrix', Math.max(1000, 10_000 - settled), async () => await fullMatrix(lab))
    t.comment(`etcd restore (incl. etcd restart) -> records settled: ${settled} ms; -> full matrix: ${Date.now() - t0} ms`)
    const n4Cidrs = (await lab.etcdctl('get', '--print-value-only', `${PREFIX}subnets/`, '--prefix')).includes(`"node-4"`)
    t.notOk(n4Cidrs, 'no subnet lease of node-4 is left')
    for (const n of lab.nodes) {
      const peers = (await n.wg('peers')).trim().split('\n').filter(l => l !== '')
      t.equal(peers.length, lab.nodes.length - 1, `${n.name}: a peer for each other live node`)
      t.notOk(peers.includes(n4Key), `${n.name}: no peer for node-4`)
      t.ok((await metric(n, 'podmesh_etcd_restores_total') ?? 0) >= 1, `${n.name} noticed the restore`)
    }
  })

  await t.test('a subnet taken by another node: not ready and counted; taken back when released; exit 4 when kept', async t => {
    const cidr = ((await records(lab)).get(n3.name)?.podCIDRs ?? [])[0] as string
    // One transaction, or node-3 re-asserts between the two writes.
    await etcdTxn(lab, [`del ${PREFIX}nodes/${n3.name}`, `put ${subnetKey(cidr)} {"v":1,"node":"intruder"}`])
    await waitFor('node-3 not ready', 5000, async () => (await http(n3, '/readyz')).code === '503')
    t.match((await http(n3, '/readyz')).body, /held by node intruder/)
    t.equal(await metric(n3, 'podmesh_registration_held'), 0)
    t.ok((await metric(n3, 'podmesh_registration_lost_total{reason="taken"}') ?? 0) >= 1, 'counted')
    await sleep(1000)
    t.equal((await http(n3, '/readyz')).code, '503', 'still not ready while the subnet is taken')
    await lab.etcdctl('del', subnetKey(cidr))
    await waitFor('node-3 ready again', 8000, async () => (await http(n3, '/readyz')).code === '200')
    t.equal(await metric(n3, 'podmesh_registration_held'), 1)
    await waitFor('the full matrix', 5000, async () => await fullMatrix(lab))

    await etcdTxn(lab, [`del ${PREFIX}nodes/${n3.name}`, `put ${subnetKey(cidr)} {"v":1,"node":"intruder"}`])
    const d = n3.daemon
    const code = await new Promise<number | null>(resolve => {
      if (d === undefined || d.exitCode !== null) { resolve(d?.exitCode ?? null); return }
      const timer = setTimeout(() => resolve(null), 20_000)
      d.once('exit', c => { clearTimeout(timer); resolve(c) })
    })
    t.equal(code, 4, 'podmeshd exits with status 4 when the other node keeps the subnet')
    t.match(n3.logTail(5), /cannot go on/)
    const others = lab.nodes.filter(n => n !== n3)
    for (const n of others) t.notMatch(await n.routes(), new RegExp(cidr.replace(/[./]/g, '\\$&')), `${n.name} routes nothing to the taken subnet`)
  })
})

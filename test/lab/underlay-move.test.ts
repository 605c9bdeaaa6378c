// Issue #9, "follow the underlay" (acceptance 5), over both backends: node-1 runs with
// --public-interface eth0, and its address changes (old removed, new added). Without a restart
// it publishes the new endpoint, and every pod reaches every pod again within 5 s. The address
// in use stays published while another appears beside it; node-2's fixed --public-address stays
// published whatever its interface does; while eth0 has no address the old endpoint stays; a
// move while etcd is away is published once it is back.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { Lab, nsExec, sleep, type LabNode } from './cluster'

interface PublishedRecord { endpoint: string, generation: number }

t.setTimeout(10 * 60_000)

async function published (lab: Lab, n: LabNode): Promise<PublishedRecord> {
  const r = JSON.parse((await lab.etcdctl('get', '--print-value-only', `/podmesh/default/nodes/${n.name}`)).trim()) as PublishedRecord
  return { endpoint: r.endpoint, generation: r.generation }
}

/** Replaces `from` with `to` on the node's eth0: removed first, so there is a gap without an IPv4 address. */
async function renumber (n: LabNode, from: string, to: string): Promise<void> {
  await nsExec(n.ns, ['ip', 'addr', 'del', `${from}/24`, 'dev', 'eth0'])
  await nsExec(n.ns, ['ip', 'addr', 'add', `${to}/24`, 'dev', 'eth0'])
}

/**
 * Runs the pod matrix until it is clean, starting rounds until `deadlineMs` after `t0`; short
 * ping timeouts keep a failed round from rounding the measured time up by seconds.
 */
async function matrixClean (lab: Lab, t0: number, deadlineMs: number): Promise<{ failures: string[], ms: number }> {
  let failures: string[] = ['(no round ran)']
  while (Date.now() - t0 < deadlineMs) {
    failures = await lab.podMatrix({ timeoutS: 0.5 })
    if (failures.length === 0) break
  }
  return { failures, ms: Date.now() - t0 }
}

function logged (n: LabNode, msg: string): Array<Record<string, unknown>> {
  return readFileSync(n.logFile, 'utf8').split('\n').filter(l => l.startsWith('{'))
    .map(l => JSON.parse(l) as Record<string, unknown>).filter(l => l.msg === msg)
}

const metric = async (n: LabNode, name: string): Promise<string | undefined> =>
  new RegExp(`^${name} (\\S+)$`, 'm').exec(await nsExec(n.ns, ['curl', '-s', '-m', '2', `${n.metricsUrl}/metrics`]))?.[1]

for (const backend of ['wireguard', 'vxlan'] as const) {
  t.test(backend, async t => {
    const lab = await Lab.create({ nodes: 3, podsPerNode: 1, backend, dualStack: true, followUnderlay: [1] })
    t.teardown(async () => { await lab.destroy() })
    const [mover, fixed] = lab.nodes as [LabNode, LabNode, LabNode]
    const port = 51820
    t.strictSame(await lab.podMatrix(), [], 'every pod reaches every pod before the move')
    const pid = mover.daemon?.pid
    const before = await published(lab, mover)
    t.equal(before.endpoint, `${mover.underlayIp}:${port}`, 'node-1 published the address of its eth0')

    // Acceptance 5: the old address removed, a new one added (IPv6 stays: the gap must not switch family).
    const moved = `192.0.2.${110 + mover.index}`
    const t0 = Date.now()
    await renumber(mover, mover.underlayIp, moved)
    const { failures, ms } = await matrixClean(lab, t0, 5000)
    t.strictSame(failures, [], 'every pod reaches every pod again within 5 s of the address change')
    t.comment(`${backend}: address change -> full pod matrix in ${ms} ms`)
    t.strictSame(await lab.podMatrix(), [], 'and stays so (normal ping timeouts)')

    const after = await published(lab, mover)
    t.equal(after.endpoint, `${moved}:${port}`, 'the record carries the new endpoint')
    t.ok(after.generation > before.generation, `generation grew (${before.generation} -> ${after.generation})`)
    t.equal(mover.daemon?.pid, pid, 'same daemon process')
    t.equal(mover.daemon?.exitCode, null, 'still running')
    t.match(logged(mover, 'underlay address changed; following it'), [{ old: `${mover.underlayIp}:${port}`, new: `${moved}:${port}`, underlayInterface: 'eth0' }])
    t.match(logged(mover, 'new endpoint published'), [{ old: `${mover.underlayIp}:${port}`, new: `${moved}:${port}`, generation: after.generation }])
    t.equal(await metric(mover, 'podmesh_endpoint_changes_total'), '1', 'counted')
    if (backend === 'vxlan') {
      const link = JSON.parse(await nsExec(mover.ns, ['ip', '-d', '-j', 'link', 'show', `${mover.wgIf}x`])) as Array<{ linkinfo: { info_data: { local?: string } } }>
      t.equal(link[0]?.linkinfo.info_data.local, moved, "node-1's VXLAN device sends from the new address")
    }

    // Another address beside the one in use moves nothing; neither does renumbering a node
    // whose --public-address is fixed. Waited past the 2 s in which a following node publishes.
    const fixedBefore = await published(lab, fixed)
    const fixedMoved = `192.0.2.${110 + fixed.index}`
    await nsExec(mover.ns, ['ip', 'addr', 'add', '192.0.2.150/24', 'dev', 'eth0'])
    await renumber(fixed, fixed.underlayIp, fixedMoved)
    await sleep(2500)
    t.strictSame(await published(lab, mover), after, 'node-1 keeps the address in use although another appeared')
    t.strictSame(await published(lab, fixed), fixedBefore, 'node-2 (--public-address) keeps its published endpoint')
    await nsExec(mover.ns, ['ip', 'addr', 'del', '192.0.2.150/24', 'dev', 'eth0'])
    await renumber(fixed, fixedMoved, fixed.underlayIp)
    t.strictSame((await matrixClean(lab, Date.now(), 5000)).failures, [], 'every pod reaches every pod with both restored')

    // A longer gap: the old endpoint stays while eth0 has no IPv4 address. Then etcd goes away
    // before the new address comes: the data plane follows at once, the record once etcd is back.
    await nsExec(mover.ns, ['ip', 'addr', 'del', `${moved}/24`, 'dev', 'eth0'])
    await sleep(1000)
    t.ok(logged(mover, 'underlay address gone and none to take yet; keeping the old endpoint').length > 0, 'the gap is noticed')
    t.equal((await published(lab, mover)).endpoint, `${moved}:${port}`, 'and the old endpoint kept meanwhile (not the IPv6 address)')
    await lab.stopEtcd()
    const third = `192.0.2.${130 + mover.index}`
    await nsExec(mover.ns, ['ip', 'addr', 'add', `${third}/24`, 'dev', 'eth0'])
    // Until a publish has failed (a call waits up to its 5 s deadline): the retry is what is tested.
    const failedBy = Date.now() + 20_000
    while (logged(mover, 'could not publish the new endpoint; will retry').length === 0 && Date.now() < failedBy) await sleep(200)
    t.ok(logged(mover, 'underlay address changed; following it').some(l => l.new === `${third}:${port}`), 'the move is followed while etcd is away')
    t.ok(logged(mover, 'could not publish the new endpoint; will retry').length > 0, 'publishing fails while etcd is away')
    await lab.startEtcd()
    const deadline = Date.now() + 30_000
    let last = await published(lab, mover)
    while (last.endpoint !== `${third}:${port}` && Date.now() < deadline) {
      await sleep(200)
      last = await published(lab, mover)
    }
    t.equal(last.endpoint, `${third}:${port}`, 'published once etcd is back: the failed publish was retried')
    t.strictSame((await matrixClean(lab, Date.now(), 5000)).failures, [], 'every pod reaches every pod after the second move')
    t.equal(mover.daemon?.pid, pid, 'still the same daemon process')
  })
}

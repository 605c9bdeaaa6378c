// Issue #9's claim rule in a netns lab, per backend (3 nodes, 1 pod each, IPv4): a hand-written
// record with a valid subnet lease that reuses node-1's WireGuard key (or VXLAN MAC) is skipped by
// every node — node-1 stays reachable from every pod, the impostor is reported by podmeshctl, the
// metric, the log (once) and the status values. A second daemon started from a copy of node-1's
// state dir exits 3 with the documented message while a ping to node-1's pod loses nothing. And a
// running node whose re-created record is later than a record holding its key yields: it removes
// its keys from etcd and exits 3 (the path two clones started at once take).
import t from 'tap'
import { spawn } from 'node:child_process'
import { cpSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Lab, ROOT, nsExec, sleep, type LabNode, waitForValue } from './cluster'

t.setTimeout(5 * 60_000)

const PREFIX = '/podmesh/default/'
const DAEMON = join(ROOT, 'dist', 'cmd', 'podmeshd.js')

interface NodeRec { name: string, publicKey?: string, vxlan?: { mac: string }, podCIDRs: string[], mtu: number }

const recordOf = async (lab: Lab, name: string): Promise<NodeRec> =>
  JSON.parse(await lab.etcdctl('get', '--print-value-only', `${PREFIX}nodes/${name}`)) as NodeRec

/** Writes by hand what a node writes: a lease, a free subnet key and a valid record on it. */
async function writeImpostor (lab: Lab, name: string, i: number, reuse: Pick<NodeRec, 'publicKey' | 'vxlan'>): Promise<string> {
  const taken = await lab.etcdctl('get', '--prefix', '--keys-only', `${PREFIX}subnets/`)
  const free = [...Array(50).keys()].map(k => 250 - k).find(k => !taken.includes(`subnets/10.244.${k}.0-24`))
  const cidr = `10.244.${free ?? 0}.0/24`
  const lease = /lease ([0-9a-f]+) granted/.exec(await lab.etcdctl('lease', 'grant', '600'))?.[1] ?? ''
  await lab.etcdctl('put', `--lease=${lease}`, `${PREFIX}subnets/${cidr.replace('/', '-')}`, JSON.stringify({ v: 1, node: name }))
  await lab.etcdctl('put', `--lease=${lease}`, `${PREFIX}nodes/${name}`,
    JSON.stringify({ v: 1, name, generation: 0, endpoint: `192.0.2.${i}:51820`, ...reuse, podCIDRs: [cidr], mtu: 1420 }))
  return cidr
}

const metric = async (n: LabNode, what: string): Promise<number | undefined> => {
  const out = await nsExec(n.ns, ['curl', '-s', '-m', '2', `${n.metricsUrl}/metrics`])
  const m = new RegExp(`^podmesh_conflicting_records\\{what="${what}"\\} (\\d+)$`, 'm').exec(out)
  return m === null ? undefined : Number(m[1])
}

const skippedLines = (n: LabNode, name: string): string[] =>
  readFileSync(n.logFile, 'utf8').split('\n').filter(l => l.includes('"msg":"node record skipped') && l.includes(`"skipped":"${name}"`))

/** A 10/s ping from `ns` to `ip` until stop(): what it sent and got back. */
function pingLoop (ns: string, ip: string): { stop: () => Promise<{ sent: number, received: number }> } {
  const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-q', '-i', '0.1', '-W', '1', ip], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  p.stdout.on('data', d => { out += String(d) })
  // 'close', not 'exit': ping's summary may still be in the pipe when it exits.
  const exited = new Promise(resolve => p.once('close', resolve))
  return {
    stop: async () => {
      p.kill('SIGINT')
      await exited
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
      if (m === null) throw new Error(`ping output not understood: ${out}`)
      return { sent: Number(m[1]), received: Number(m[2]) }
    }
  }
}

/** `p`, or `fallback` after `ms` — without a timer left to keep the test process alive. */
async function within<T> (p: Promise<T>, ms: number, fallback: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<T>(resolve => { timer = setTimeout(() => resolve(fallback()), ms) })
  try { return await Promise.race([p, late]) } finally { clearTimeout(timer) }
}

/** Runs podmeshd for `n` to its exit (it must not become a lasting process): exit code and log. */
async function runToExit (lab: Lab, n: LabNode, timeoutMs = 30_000): Promise<{ code: number | null, log: string }> {
  const p = spawn('ip', ['netns', 'exec', n.ns, process.execPath, DAEMON, ...n.daemonArgs()], { stdio: ['ignore', 'pipe', 'pipe'] })
  lab.track(p)
  let log = ''
  p.stdout.on('data', d => { log += String(d) })
  p.stderr.on('data', d => { log += String(d) })
  const code = await within(new Promise<number | null>(resolve => p.once('exit', c => resolve(c))), timeoutMs, () => { p.kill('SIGKILL'); return -1 })
  return { code, log }
}

for (const backend of ['wireguard', 'vxlan'] as const) {
  t.test(`${backend}: an impostor is skipped and reported, a clone of node-1 refused`, async t => {
    const lab = await Lab.create({ nodes: 3, podsPerNode: 1, backend, dualStack: false })
    t.teardown(async () => await lab.destroy())
    const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode]
    await waitForValue('the pod matrix', 15_000, async () => (await lab.podMatrix()).length === 0).catch(() => undefined)
    t.strictSame(await lab.podMatrix(), [], 'before: every pod reaches every pod')

    // Named to sort after node-1: without the rule its peer (or FDB entry) would be applied last and win.
    const victim = await recordOf(lab, 'node-1')
    const what = backend === 'wireguard' ? 'publicKey' : 'vxlanMac'
    const value = backend === 'wireguard' ? victim.publicKey ?? '' : victim.vxlan?.mac ?? ''
    await writeImpostor(lab, 'zz-impostor', 99, backend === 'wireguard' ? { publicKey: value } : { vxlan: { mac: value } })

    for (const n of lab.nodes) await waitForValue(`${n.name} counts the conflict`, 15_000, async () => await metric(n, what) === 1).catch(() => undefined)
    t.strictSame(await Promise.all(lab.nodes.map(async n => await metric(n, what))), lab.nodes.map(() => 1), `podmesh_conflicting_records{what="${what}"} 1 on every node`)
    t.strictSame(await lab.podMatrix(), [], 'the victim stays reachable from every pod')
    if (backend === 'wireguard') {
      const allowed = await n2.wg('allowed-ips')
      t.match(allowed, `${value}\t${victim.podCIDRs[0]}`, 'node-2 keeps node-1\'s key on node-1\'s subnet')
      t.match(await n2.wg('endpoints'), `${value}\t${n1.underlayIp}:51820`, 'and on node-1\'s endpoint')
    } else {
      const fdb = await nsExec(n2.ns, ['bridge', 'fdb', 'show', 'dev', `${n2.wgIf}x`])
      t.match(fdb, `${value} dst ${n1.underlayIp}`, 'node-2 sends node-1\'s MAC to node-1')
      t.notMatch(fdb, 'dst 192.0.2.99', 'and nothing to the impostor')
    }

    const rows = JSON.parse(await lab.ctl('nodes', '-o', 'json')) as Array<{ name: string, conflicts?: unknown }>
    t.strictSame(rows.find(r => r.name === 'zz-impostor')?.conflicts, [{ holder: 'node-1', what, value }], 'podmeshctl nodes -o json')
    t.strictSame(rows.filter(r => r.conflicts !== undefined).map(r => r.name), ['zz-impostor'], 'nobody else is flagged')
    t.match(await lab.ctl('nodes'), /^zz-impostor\s.*!! skipped: (WireGuard public key|VXLAN MAC) of node-1$/m, 'podmeshctl nodes table')
    t.match(await lab.ctl('status'), /^zz-impostor: skipped by every node: node zz-impostor claims the .*, which node node-1 holds/m, 'podmeshctl status')
    const status = await waitForValue('node-3\'s status lists the conflict', 15_000, async () => {
      const s = JSON.parse(await lab.etcdctl('get', '--print-value-only', `${PREFIX}status/node-3`)) as { conflicts?: unknown[] }
      return s.conflicts !== undefined ? s : undefined
    })
    t.strictSame(status.conflicts, [{ node: 'zz-impostor', holder: 'node-1', what, value }], 'status/node-3')
    t.equal(skippedLines(n2, 'zz-impostor').length, 1, 'node-2 logged it once')

    // A second daemon from a copy of node-1's state dir: refused before it publishes anything.
    const n4 = await lab.addNode(4)
    cpSync(join(n1.dir, 'state'), join(n4.dir, 'state'), { recursive: true })
    const ping = pingLoop(n2.pods[0]!.ns, n1.pods[0]!.ips[0]!)
    await sleep(1000)
    const clone = await runToExit(lab, n4)
    await sleep(1000)
    const loss = await ping.stop()
    t.equal(clone.code, 3, 'the clone exits with status 3')
    const file = join(n4.dir, 'state', backend === 'wireguard' ? 'wireguard.key' : 'vxlan-mac')
    t.match(clone.log, `podmeshd: node node-4: refusing to publish this node's ${backend === 'wireguard' ? 'WireGuard public key' : 'VXLAN MAC'} ${value} (node node-1)`)
    t.match(clone.log, `To fix: stop podmeshd on node-4, remove ${file} (new ones are made at the next start), then start podmeshd again`)
    t.match(clone.log, /"level":60,.*"phase":"start"/, 'a fatal log line with the phase')
    t.equal((await lab.etcdctl('get', '--prefix', '--keys-only', `${PREFIX}nodes/node-4`)).trim(), '', 'no record of the clone')
    t.notMatch(await lab.etcdctl('get', '--prefix', `${PREFIX}subnets/`), '"node":"node-4"', 'no subnet of the clone')
    t.ok(loss.sent >= 20 && loss.received === loss.sent, `node-2's pod → node-1's pod during the attempt: ${loss.received}/${loss.sent}`)
    t.strictSame(await lab.podMatrix(), [], 'the matrix stays full')

    if (backend !== 'wireguard') return
    // node-3 restarts while a later record holds its key: it is the earlier claimant and goes on.
    await writeImpostor(lab, 'yy-thief', 98, { publicKey: (await recordOf(lab, 'node-3')).publicKey ?? '' })
    await waitForValue('node-1 counts both conflicts', 15_000, async () => await metric(n1, 'publicKey') === 2)
    await n3.stop()
    await n3.start(['--lease-ttl', '6s'])
    t.equal(n3.daemon?.exitCode, null, 'node-3, the earlier claimant, restarts despite yy-thief')
    t.match(await nsExec(n3.ns, ['curl', '-s', '-m', '2', `${n3.metricsUrl}/readyz`]), /^ready/, 'and is ready')
    // Its lease goes (revoked): the keys it re-creates are later than yy-thief's, so its record
    // loses on every watcher, node-3's own included — it must yield, not keep publishing the key.
    const exited = new Promise<number | null>(resolve => n3.daemon?.once('exit', c => resolve(c)))
    const lease = BigInt(/"lease":(\d+)/.exec(await lab.etcdctl('get', '-w', 'json', `${PREFIX}nodes/node-3`))?.[1] ?? '0')
    await lab.etcdctl('lease', 'revoke', lease.toString(16))
    const code = await within<number | null | 'timeout'>(exited, 30_000, () => 'timeout')
    t.equal(code, 3, 'node-3 exits 3 once its record lost the key')
    t.match(readFileSync(n3.logFile, 'utf8'), "node node-3: this node's record lost its WireGuard public key")
    await waitForValue('node-3\'s keys leave etcd', 10_000, async () => (await lab.etcdctl('get', '--prefix', '--keys-only', `${PREFIX}nodes/node-3`)).trim() === '')
    t.notMatch(await lab.etcdctl('get', '--prefix', `${PREFIX}subnets/`), '"node":"node-3"', 'its subnet is free again')
    lab.nodes.splice(lab.nodes.indexOf(n3), 1)
    t.strictSame(await lab.podMatrix(), [], 'node-1 and node-2 pods still reach each other')
    t.equal(skippedLines(n2, 'zz-impostor').length, 1, 'the first conflict is still logged only once on node-2')
  })
}

// End-to-end TLS: the lab's etcd serves https:// and requires client certificates; podmeshd on
// every node and podmeshctl (flags and environment) use a client certificate from a CA made for
// this run. Then the refusals, each named in the error: no client certificate, one from a CA etcd
// does not trust, a CA that did not sign etcd's certificate, and a server certificate that does
// not name the host dialed. A refused podmeshd exits 1 at start and leaves its node's kernel
// state (tunnel, routes, addresses, neighbours) as it was: pods keep reaching that node.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Lab, nsExec, ROOT, type LabEtcdTls, type LabNode } from './cluster'
import { issueCert, makeCa } from '../harness/pki'

const DAEMON = join(ROOT, 'dist', 'cmd', 'podmeshd.js')
const CTL = join(ROOT, 'dist', 'cmd', 'podmeshctl.js')
const ETCD_FLAGS = new Set(['--etcd-endpoints', '--etcd-ca', '--etcd-cert', '--etcd-key'])

t.setTimeout(10 * 60_000)
const pkiDir = mkdtempSync(join(tmpdir(), 'podmesh-etcd-tls-'))
t.teardown(() => rmSync(pkiDir, { recursive: true, force: true }))

let lab: Lab
let tls: LabEtcdTls
let other: { caFile: string, clientCertFile: string, clientKeyFile: string }

t.before(async () => {
  const ca = await makeCa(pkiDir, 'ca')
  // The lab's etcd listens on 192.0.2.1, the address every node and podmeshctl dial.
  const server = await issueCert(pkiDir, ca, 'etcd-server', { use: 'server', san: ['IP:192.0.2.1'] })
  const client = await issueCert(pkiDir, ca, 'podmesh-client', { use: 'client', cn: 'podmesh' })
  // A second CA, trusted by no one here: its client certificate must be refused, and as our
  // trust anchor it cannot verify etcd's certificate.
  const otherCa = await makeCa(pkiDir, 'other-ca')
  const otherClient = await issueCert(pkiDir, otherCa, 'other-client', { use: 'client', cn: 'podmesh' })
  tls = { caFile: ca.certFile, serverCertFile: server.certFile, serverKeyFile: server.keyFile, clientCertFile: client.certFile, clientKeyFile: client.keyFile }
  other = { caFile: otherCa.certFile, clientCertFile: otherClient.certFile, clientKeyFile: otherClient.keyFile }
  lab = await Lab.create({ nodes: 3, podsPerNode: 1, backend: 'vxlan', dualStack: false, etcdTls: tls })
})
t.teardown(async () => { await lab?.destroy() })

interface Outcome { code: number | null, stdout: string, out: string }

/** Runs a command in a namespace; resolves to its exit status and output (`out`: stdout and stderr), whatever the status. */
async function attempt (ns: string, args: string[]): Promise<Outcome> {
  return await new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : (err as { code?: unknown }).code
      if (typeof code !== 'number') { reject(err ?? new Error('no exit status')); return }
      resolve({ code, stdout, out: stdout + stderr })
    })
  })
}

/** podmeshctl in `ns` with exactly these etcd flags (no lab defaults). */
const ctlWith = async (ns: string, etcd: string[], ...args: string[]): Promise<Outcome> =>
  await attempt(ns, [process.execPath, CTL, ...etcd, ...args])

const goodFlags = (): string[] => ['--etcd-endpoints', lab.etcdUrl, ...lab.etcdTlsFlags]

/** The node's daemon arguments with the etcd flags replaced. */
function daemonArgsWith (n: LabNode, etcd: string[]): string[] {
  const args = n.daemonArgs()
  const out: string[] = []
  for (let i = 0; i < args.length; i++) {
    if (ETCD_FLAGS.has(args[i] as string)) { i++; continue }
    out.push(args[i] as string)
  }
  return [...out, ...etcd]
}

/** Starts podmeshd with these etcd flags and waits for it to exit (or gives up after `ms`). */
async function daemonRefused (n: LabNode, etcd: string[], ms = 90_000): Promise<{ code: number | null, out: string }> {
  const p = spawn('ip', ['netns', 'exec', n.ns, process.execPath, DAEMON, ...daemonArgsWith(n, etcd)], { stdio: ['ignore', 'pipe', 'pipe'] })
  lab.track(p)
  let out = ''
  p.stdout.on('data', d => { out += String(d) })
  p.stderr.on('data', d => { out += String(d) })
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { p.kill('SIGKILL'); resolve({ code: null, out: `${out}\n(still running after ${ms} ms: killed)` }) }, ms)
    p.on('error', e => { clearTimeout(timer); reject(e) })
    // 'close': the last log lines may still be in the pipe at 'exit'.
    p.on('close', code => { clearTimeout(timer); resolve({ code, out }) })
  })
}

/**
 * What podmeshd owns in a node's kernel: links (name, state, MAC, flags; the VXLAN device in
 * detail — not the bridge's, whose timers tick), addresses, routes, permanent neighbours, FDB.
 */
async function kernelState (n: LabNode): Promise<string> {
  const parts = await Promise.all([
    ['ip', '-br', 'link', 'show'], ['ip', '-o', '-d', 'link', 'show', 'type', 'vxlan'], ['ip', '-o', 'addr', 'show'], ['ip', 'route', 'show', 'table', 'all'],
    ['ip', '-6', 'route', 'show', 'table', 'all'], ['ip', 'neigh', 'show', 'nud', 'permanent'], ['bridge', 'fdb', 'show', 'dev', `${n.wgIf}x`]
  ].map(async c => await nsExec(n.ns, c)))
  return parts.join('\n---\n')
}

t.test('podmeshd on every node forms the mesh through an etcd that requires client certificates', async t => {
  t.match(lab.etcdUrl, /^https:\/\/192\.0\.2\.1:\d+$/, 'the lab dials etcd over https')
  // The etcd really requires a client certificate: the same request without one is refused.
  const health = `${lab.etcdUrl}/health`
  t.match(await nsExec(lab.hub, ['curl', '-sS', '-m', '5', '--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile, health]), '"health":"true"', 'with the client certificate')
  const anon = await attempt(lab.hub, ['curl', '-sS', '-m', '5', '--cacert', tls.caFile, health])
  t.not(anon.code, 0, `without one, curl fails: ${anon.out.trim()}`)
  t.notMatch(anon.out, '"health":"true"', 'and gets no answer')
  t.strictSame(await lab.podMatrix(), [], 'every pod reaches every pod')
  const nodes = JSON.parse(await lab.ctl('nodes', '-o', 'json')) as Array<{ name: string }>
  t.strictSame(nodes.map(n => n.name).sort(), ['node-1', 'node-2', 'node-3'], 'every node registered through TLS')
})

t.test('podmeshctl works with the client certificate: flags, and the PODMESH_ETCD_* environment', async t => {
  const status = JSON.parse(await lab.ctl('status', '-o', 'json')) as Array<{ node: string, health: string }>
  t.strictSame(status.map(s => [s.node, s.health]).sort(), [['node-1', 'ok'], ['node-2', 'ok'], ['node-3', 'ok']], 'status: every node ok')
  const env = ['env', `PODMESH_ETCD_ENDPOINTS=${lab.etcdUrl}`, `PODMESH_ETCD_CA=${tls.caFile}`, `PODMESH_ETCD_CERT=${tls.clientCertFile}`, `PODMESH_ETCD_KEY=${tls.clientKeyFile}`]
  const shown = await nsExec(lab.hub, [...env, process.execPath, CTL, 'config', 'show', '-o', 'json'])
  t.match(JSON.parse(shown), { backend: { type: 'vxlan' } }, 'config show from the environment alone')
  // doctor on a node: the etcd and TLS checks pass (other checks may warn or fail in a netns,
  // which makes doctor exit 1; its JSON is read either way).
  const [n1] = lab.nodes as [LabNode]
  const doc = await ctlWith(n1.ns, goodFlags(), 'doctor', '-o', 'json')
  const checks = JSON.parse(doc.stdout) as Array<{ check: string, result: string, detail: string }>
  t.match(checks.find(c => c.check === 'etcd'), { result: 'OK' }, 'doctor: etcd answered')
  t.match(checks.find(c => c.check === 'etcd tls'), { result: 'OK', detail: /CA .*ca\.pem, client cert .*podmesh-client\.pem/ }, 'doctor: TLS with the cluster CA and a client certificate')
})

t.test('podmeshctl is refused, with the reason named', async t => {
  const ep = ['--etcd-endpoints', lab.etcdUrl]
  const cases: Array<[string, string[], RegExp]> = [
    ['no client certificate', [...ep, '--etcd-ca', tls.caFile], /TLS: etcd refused the client certificate .*--etcd-cert\/--etcd-key/],
    ['a client certificate from another CA', [...ep, '--etcd-ca', tls.caFile, '--etcd-cert', other.clientCertFile, '--etcd-key', other.clientKeyFile], /TLS: etcd refused the client certificate/],
    ['a CA that did not sign etcd\'s certificate', [...ep, '--etcd-ca', other.caFile, '--etcd-cert', tls.clientCertFile, '--etcd-key', tls.clientKeyFile],
      /TLS: certificate verify failed: etcd's server certificate is not signed by a CA in --etcd-ca/]
  ]
  for (const [what, flags, message] of cases) {
    const r = await ctlWith(lab.hub, flags, 'status')
    t.equal(r.code, 1, `${what}: exit 1`)
    t.match(r.out, message, `${what}: ${r.out.trim().split('\n').pop()}`)
  }
  // doctor: the TLS check fails with the same reason (it does not pass beside a failed etcd check).
  const [n1] = lab.nodes as [LabNode]
  const [, wrongCa, verifyFailed] = cases[2]!
  const doc = await ctlWith(n1.ns, wrongCa, 'doctor', '-o', 'json')
  t.equal(doc.code, 1, 'doctor exits 1')
  const checks = JSON.parse(doc.stdout) as Array<{ check: string, result: string, detail: string }>
  t.match(checks.find(c => c.check === 'etcd tls'), { result: 'FAIL', detail: verifyFailed }, 'doctor: the etcd tls check fails, naming the verify failure')
})

t.test('a server certificate that does not name the host dialed is refused', async t => {
  const n3 = lab.nodes[2] as LabNode
  // In node-3's namespace, 127.0.0.1:<port> is a plain TCP relay to etcd: the TLS session is
  // etcd's own, but its certificate names 192.0.2.1, not 127.0.0.1.
  const etcdPort = Number(new URL(lab.etcdUrl).port)
  const port = 30000 + Math.floor(Math.random() * 10000)
  const relay = spawn('ip', ['netns', 'exec', n3.ns, process.execPath, '-e',
    `const net=require('net');net.createServer(c=>{const u=net.connect(${etcdPort},'192.0.2.1');c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy())}).listen(${port},'127.0.0.1',()=>console.log('up'))`],
  { stdio: ['ignore', 'pipe', 'inherit'] })
  lab.track(relay)
  t.teardown(() => { relay.kill('SIGKILL') })
  await new Promise(resolve => relay.stdout?.once('data', resolve))
  // Control: through the relay, a client that checks the certificate against 192.0.2.1 succeeds.
  const through = await nsExec(n3.ns, ['curl', '-sS', '-m', '5', '--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile,
    '--connect-to', `192.0.2.1:${etcdPort}:127.0.0.1:${port}`, `${lab.etcdUrl}/health`])
  t.match(through, '"health":"true"', 'the relay reaches etcd')
  const flags = ['--etcd-endpoints', `https://127.0.0.1:${port}`, ...lab.etcdTlsFlags]
  const ctl = await ctlWith(n3.ns, flags, 'status')
  t.equal(ctl.code, 1, 'podmeshctl exits 1')
  t.match(ctl.out, /TLS: etcd's server certificate does not name the host dialed \(.*127\.0\.0\.1.*192\.0\.2\.1.*\); its subjectAltName must hold/, 'podmeshctl names the mismatch')
  const before = await kernelState(n3)
  await n3.stop()
  const d = await daemonRefused(n3, flags)
  t.equal(d.code, 1, 'podmeshd exits 1')
  t.match(d.out, /start failed: etcd get .*config: TLS: etcd's server certificate does not name the host dialed/, 'podmeshd names the mismatch')
  t.equal(await kernelState(n3), before, 'node-3\'s kernel state is untouched')
  await n3.start()
})

t.test('podmeshd is refused at start with the reason named, and leaves its node\'s data plane alone', async t => {
  const [n1, n2] = lab.nodes as [LabNode, LabNode]
  const ep = ['--etcd-endpoints', lab.etcdUrl]
  // A graceful stop keeps the data plane: a refused restart must keep it too.
  await n2.stop()
  const before = await kernelState(n2)
  const cases: Array<[string, string[], RegExp]> = [
    ['no client certificate', [...ep, '--etcd-ca', tls.caFile], /TLS: etcd refused the client certificate/],
    ['a client certificate from another CA', [...ep, '--etcd-ca', tls.caFile, '--etcd-cert', other.clientCertFile, '--etcd-key', other.clientKeyFile], /TLS: etcd refused the client certificate/],
    ['a CA that did not sign etcd\'s certificate', [...ep, '--etcd-ca', other.caFile, '--etcd-cert', tls.clientCertFile, '--etcd-key', tls.clientKeyFile], /TLS: certificate verify failed/]
  ]
  for (const [what, flags, message] of cases) {
    const d = await daemonRefused(n2, flags)
    t.equal(d.code, 1, `${what}: podmeshd exits 1`)
    t.match(d.out, message, `${what}: named in its log and on stderr`)
    t.match(d.out, /"msg":"start failed"/, `${what}: logged as a failed start, not retried`)
    t.notMatch(d.out, /etcd not reachable; retrying/, `${what}: not mistaken for an etcd that is down`)
  }
  t.equal(await kernelState(n2), before, 'node-2\'s kernel state is what the graceful stop left')
  t.ok(await lab.ping(n1.pods[0]!.ns, n2.pods[0]!.ips[0]!), 'node-1\'s pod still reaches node-2\'s pod')
  await n2.start()
  t.strictSame(await lab.podMatrix(), [], 'with podmeshd back on node-2, every pod reaches every pod')
})

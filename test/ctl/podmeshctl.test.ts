// podmeshctl as an operator runs it: a child process against a real etcd.
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import { startEtcd } from '../harness/etcd'
import { compileEntry } from '../harness/compile'
import { type CliRun, runCli } from '../harness/ctl'
import { dump, fields, tempDir, testClient } from '../harness/store'
import { nodeKey, subnetKey } from '../../lib/store/keys'
import { formatSubnetValue } from '../../lib/store/subnet-value'
import { parseDaemonOptions } from '../../lib/config/daemon-options'
import { ETCD_FLAGS } from '../../lib/config/etcd-flags'

type Run = CliRun
let cli = ''
const ctl = async (args: string[], env: Record<string, string> = {}): Promise<Run> => await runCli(cli, args, env)

t.before(async () => {
  // Compiled like the shipped build: children start in a fraction of a second.
  cli = await compileEntry(t, 'cmd/podmeshctl.ts')
})

t.test('podmeshctl', async t => {
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  const initFlags = ['--ipv4-cidr', '10.244.0.0/16', '--ipv6-cidr', 'fd00:10:244::/56', '--subnet-len4', '24', '--subnet-len6', '64', '--backend', 'wireguard', '--wg-port', '51821', '--keepalive', '15']

  const first = await ctl(['init', ...initFlags, ...E, '-o', 'json'])
  t.equal(first.code, 0, first.stderr)
  const written = JSON.parse(first.stdout) as { created: boolean, key: string, config: { backend: { wireguard: { port: number } } } }
  t.equal(written.created, true)
  t.equal(written.key, '/podmesh/default/config')
  t.equal(written.config.backend.wireguard.port, 51821)

  const again = await ctl(['init', ...initFlags, ...E])
  t.equal(again.code, 1)
  t.match(again.stderr, /already exists; use --force/)

  const forced = await ctl(['init', ...initFlags, '--mtu', '1400', '--force', ...E])
  t.equal(forced.code, 0, forced.stderr)
  t.match(forced.stdout, /^replaced \/podmesh\/default\/config/)
  t.match(forced.stdout, /mtu\s+1400/)

  // A range wider than /8 only with --force, and with a warning; recorded so daemons accept it.
  const wide = await ctl(['init', '--ipv4-cidr', '10.0.0.0/7', '--force', '--cluster', 'wide', ...E, '-o', 'json'])
  t.equal(wide.code, 0, wide.stderr)
  t.match(wide.stderr, /podmeshctl: warning: ipv4\.cidr 10\.0\.0\.0\/7 is wider than \/8; accepted because it was forced/)
  t.equal((JSON.parse(wide.stdout) as { config: { allowWideRange?: boolean } }).config.allowWideRange, true)

  // config show, via the environment instead of the flag.
  const show = await ctl(['config', 'show', '-o', 'json'], { PODMESH_ETCD_ENDPOINTS: etcd.endpoint })
  t.equal(show.code, 0, show.stderr)
  t.strictSame(JSON.parse(show.stdout), parseNetworkConfig({
    v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' }, mtu: 1400,
    backend: { wireguard: { port: 51821, persistentKeepalive: 15 } }
  }))
  const table = await ctl(['config', 'show', ...E])
  t.match(table.stdout, /^FIELD\s+VALUE\n/)
  t.match(table.stdout, /ipv6\.cidr\s+fd00:10:244::\/56/)

  // Another cluster on the same etcd has no config.
  const other = await ctl(['config', 'show', '--cluster', 'blue', ...E])
  t.equal(other.code, 1)
  t.match(other.stderr, /\/podmesh\/blue\/config: no network config/)

  // node remove
  const client = await testClient(t, etcd.endpoints)
  const config = parseNetworkConfig(JSON.parse(show.stdout))
  const h = await acquireNode({ client, prefix: '/podmesh/default/', config, name: 'old-node', stateDir: await tempDir(t), record: fields(1) })
  t.teardown(async () => await h.close())
  const rm = await ctl(['node', 'remove', 'old-node', ...E, '-o', 'json'])
  t.equal(rm.code, 0, rm.stderr)
  t.strictSame(JSON.parse(rm.stdout), { name: 'old-node', record: true, subnets: h.podCIDRs, status: false, running: false })
  t.strictSame([...(await dump(client, '/podmesh/default/')).keys()], ['/podmesh/default/config'], 'only the config is left')
  const rm2 = await ctl(['node', 'remove', 'old-node', ...E])
  t.equal(rm2.code, 1)
  t.equal(rm2.stderr, 'podmeshctl: no node named "old-node" in cluster "default" (no record, subnet lease or status to remove)\n')
})

t.test('nodes and status show a record every node skips, and why', async t => {
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  t.equal((await ctl(['init', '--ipv4-cidr', '10.244.0.0/16', '--backend', 'vxlan', ...E])).code, 0)
  const client = await testClient(t, etcd.endpoints)
  const config = parseNetworkConfig(JSON.parse((await ctl(['config', 'show', '-o', 'json', ...E])).stdout))
  const prefix = '/podmesh/default/'
  const holder = await acquireNode({ client, prefix, config, name: 'node-1', stateDir: await tempDir(t), record: { ...fields(1), publicKey: undefined, vxlan: { mac: '02:00:00:00:00:01' } } })
  t.teardown(async () => await holder.close())
  // Hand-written, with a valid subnet lease, reusing node-1's VXLAN MAC.
  await client.put(subnetKey(prefix, '10.244.250.0/24')).value(formatSubnetValue('mimic'))
  await client.put(nodeKey(prefix, 'mimic')).value(JSON.stringify({ v: 1, name: 'mimic', generation: 0, endpoint: '192.0.2.99:51820', podCIDRs: ['10.244.250.0/24'], vxlan: { mac: '02:00:00:00:00:01' }, mtu: 1450 }))

  const json = await ctl(['nodes', '-o', 'json', ...E])
  t.equal(json.code, 0, json.stderr)
  const rows = JSON.parse(json.stdout) as Array<{ name: string, conflicts?: unknown }>
  t.strictSame(rows.map(r => [r.name, r.conflicts]), [['mimic', [{ holder: 'node-1', what: 'vxlanMac', value: '02:00:00:00:00:01' }]], ['node-1', undefined]])
  const table = await ctl(['nodes', ...E])
  t.match(table.stdout, /^NAME\s+SUBNETS.*\s+CONFLICT\n/)
  t.match(table.stdout, /^mimic\s.*!! skipped: VXLAN MAC of node-1$/m)
  t.match(table.stdout, /^node-1\s.*\s-$/m)

  const status = await ctl(['status', ...E])
  t.equal(status.code, 0, status.stderr)
  t.match(status.stdout, /^mimic\s.*!! skipped$/m)
  t.match(status.stdout, 'mimic: skipped by every node: node mimic claims the VXLAN MAC 02:00:00:00:00:01, which node node-1 holds (the earlier claimant)')
  const one = JSON.parse((await ctl(['status', 'mimic', '-o', 'json', ...E])).stdout) as Array<{ node: string, converged: boolean, conflicts: unknown }>
  t.strictSame(one.map(r => [r.node, r.converged, r.conflicts]), [['mimic', false, [{ holder: 'node-1', what: 'vxlanMac', value: '02:00:00:00:00:01' }]]])
})

t.test('usage errors exit 2 with a clear message, before etcd is contacted', async t => {
  const none = ['--etcd-endpoints', 'http://127.0.0.1:1']
  const cases: Array<[string[], RegExp]> = [
    [['init', '--ipv4-cidr', '10.244.0.0/16', '--bogus', ...none], /Unknown option '--bogus'/],
    [['init', '--ipv4-cidr', '10.244.1.0/16', ...none], /--ipv4-cidr: ipv4\.cidr: "10\.244\.1\.0\/16" has host bits set/],
    [['init', '--ipv4-cidr', '10.244.0.0/16', '--wg-port', 'x', ...none], /--wg-port: "x" is not a non-negative integer/],
    [['init', '--ipv4-cidr', '10.244.0.0/16', '--backend', 'ipip', ...none], /--backend: backend\.type: unknown backend "ipip"/],
    [['init', ...none], /give --ipv4-cidr and\/or --ipv6-cidr/],
    [['init', '--ipv4-cidr', '0.0.0.0/0', ...none], /--ipv4-cidr: ipv4\.cidr: 0\.0\.0\.0\/0 is a default route/],
    [['init', '--ipv6-cidr', '::/0', '--force', ...none], /--ipv6-cidr: ipv6\.cidr: ::\/0 is a default route/],
    [['init', '--ipv4-cidr', '169.254.0.0/16', ...none], /169\.254\.0\.0\/16 overlaps 169\.254\.0\.0\/16, which is link-local/],
    [['init', '--ipv4-cidr', '127.0.0.0/8', ...none], /which is loopback/],
    [['init', '--ipv6-cidr', 'ff02::/56', ...none], /overlaps ff00::\/8, which is multicast/],
    [['init', '--ipv4-cidr', '10.0.0.0/7', ...none], /10\.0\.0\.0\/7 is wider than \/8; .*init --force/],
    [['init', '--ipv4-cidr', '10.99.0.0/16', '--etcd-endpoints', 'http://10.99.0.1:2379'], /ipv4\.cidr: 10\.99\.0\.0\/16 contains 10\.99\.0\.1 \(etcd endpoint http:\/\/10\.99\.0\.1:2379\)/],
    [['config', 'show', '-o', 'yaml', ...none], /-o\/--output must be json or table/],
    [['node', 'remove', ...none], /usage: podmeshctl node remove <name>/],
    [['frobnicate', ...none], /unknown command "frobnicate"/],
    [['doctor', '--public-address', '192.0.2.300', ...none], /^podmeshctl: --public-address: "192\.0\.2\.300" is not an IP address$/m],
    [['diff', '--wg-interface', 'wg:0', ...none], /^podmeshctl: --wg-interface: "wg:0" is not a valid interface name/m],
    [['config', 'show', '--etcd-endpoints', 'ftp://x:1'], /podmeshctl: --etcd-endpoints: "ftp:\/\/x:1": scheme must be http or https/],
    [[], /usage: podmeshctl/]
  ]
  // Independent runs: in parallel, to keep the file fast.
  const runs = await Promise.all(cases.map(async ([args]) => await ctl(args)))
  cases.forEach(([args, re], i) => {
    t.equal(runs[i]?.code, 2, `exit 2: ${args.join(' ')}`)
    t.match(runs[i]?.stderr, re)
  })
  const help = await ctl(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--etcd-endpoints URLS/)
})

t.test('the shipped podmeshctl refuses etcd flags with podmeshd\'s message and lists them from the one table', async t => {
  const cases: Array<{ argv: string[], env: Record<string, string> }> = [
    { argv: ['--etcd-endpoints', 'ftp://x:1'], env: {} },
    { argv: ['--etcd-endpoints', 'http://root:hunter2@x:2379'], env: {} },
    { argv: [], env: { PODMESH_ETCD_ENDPOINTS: 'http://x' } },
    { argv: ['--etcd-username', 'u'], env: {} },
    { argv: [], env: { PODMESH_ETCD_CERT: '/c.pem' } },
    { argv: ['--cluster', 'Blue_1'], env: {} },
    { argv: [], env: { PODMESH_PREFIX: 'podmesh' } }
  ]
  const runs = await Promise.all(cases.map(async c => await ctl(['config', 'show', ...c.argv], c.env)))
  cases.forEach((c, i) => {
    const daemon = (() => { try { parseDaemonOptions({ argv: ['--node-name', 'n1', ...c.argv], env: c.env }) } catch (e) { return (e as Error).message } })()
    const what = [...c.argv, ...Object.entries(c.env).map(([k, v]) => `${k}=${v}`)].join(' ')
    t.equal(runs[i]?.code, 2, `exit 2: ${what}`)
    t.equal(runs[i]?.stderr, `podmeshctl: ${daemon ?? 'podmeshd accepted it'}\n(see podmeshctl --help)\n`, what)
  })
  const help = (await ctl(['--help'])).stdout
  for (const s of Object.values(ETCD_FLAGS)) t.match(help, new RegExp(`^  --${s.flag} ${s.arg} +${s.help.replace(/[()]/g, '\\$&')} \\[${s.env}\\]`, 'm'), `--${s.flag}`)
})

t.test('etcd unreachable: exit 1 with the etcd error', async t => {
  const r = await ctl(['config', 'show', '--etcd-endpoints', 'http://127.0.0.1:1'])
  t.equal(r.code, 1)
  t.match(r.stderr, /podmeshctl: etcd get \/podmesh\/default\/config: /)
})

t.test('status shows which config revision each node runs, and flags an old one', async t => {
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  const first = await ctl(['init', '--ipv4-cidr', '10.244.0.0/16', ...E, '-o', 'json'])
  t.equal(first.code, 0, first.stderr)
  const oldRev = (JSON.parse(first.stdout) as { revision: string }).revision
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/default/'
  const config = parseNetworkConfig(JSON.parse((await ctl(['config', 'show', '-o', 'json', ...E])).stdout))
  for (const i of [1, 2]) {
    const h = await acquireNode({ client, prefix, config, name: `node-${i}`, stateDir: await tempDir(t), record: fields(i) })
    t.teardown(async () => await h.close())
  }
  const second = await ctl(['init', '--ipv4-cidr', '10.244.0.0/16', '--mtu', '1400', '--force', ...E, '-o', 'json'])
  t.equal(second.code, 0, second.stderr)
  const newRev = (JSON.parse(second.stdout) as { revision: string }).revision
  const status = (node: string, configRevision: string, pending?: string): string => JSON.stringify({
    v: 1, node, version: '0.1.0', generation: 0, revision: '1', degraded: false, ready: true, updatedAt: new Date().toISOString(),
    peers: [], configRevision, ...(pending !== undefined ? { configPending: pending } : {})
  })
  await client.put(`${prefix}status/node-1`).value(status('node-1', newRev))
  await client.put(`${prefix}status/node-2`).value(status('node-2', oldRev, newRev))

  const json = await ctl(['status', '-o', 'json', ...E])
  t.equal(json.code, 0, json.stderr)
  const rows = JSON.parse(json.stdout) as Array<{ node: string, configRevision?: string, configCurrent?: boolean, converged: boolean }>
  t.strictSame(rows.map(r => [r.node, r.configRevision, r.configCurrent]), [['node-1', newRev, true], ['node-2', oldRev, false]])
  t.equal(rows[1]?.converged, false, 'a node on an old config is not converged')
  const table = await ctl(['status', ...E])
  t.match(table.stdout, /^NODE\s+HEALTH\s+CONFIG\s+PEER/)
  t.match(table.stdout, new RegExp(`^node-1\\s+\\S+\\s+${newRev}\\s`, 'm'))
  t.match(table.stdout, new RegExp(`^node-2\\s+\\S+\\s+${oldRev} !! old\\s`, 'm'))
  t.match(table.stdout, new RegExp(`^config: etcd holds revision ${newRev}; node-2 runs ${oldRev} — a config is applied only at start: restart podmeshd on these nodes$`, 'm'))
})

import t from 'tap'
import { parseDaemonOptions, redactOptions, helpText, OPTION_SPECS, type DaemonOptions } from '../../lib/config/daemon-options'

const parse = (argv: string[], env: Record<string, string> = {}, file?: string): DaemonOptions => {
  const r = parseDaemonOptions({ argv, env, readFile: () => { if (file === undefined) throw new Error('no file'); return file } })
  if (r === 'help') throw new Error('unexpected help')
  return r
}

t.test('defaults', async t => {
  const o = parse(['--node-name', 'n1'])
  t.match(o, { etcdEndpoints: ['http://127.0.0.1:2379'], cluster: 'default', prefix: '/podmesh/default/', nodeName: 'n1',
    wgInterface: 'podmesh0', wgMode: 'auto', stateDir: '/var/lib/podmesh', resyncIntervalMs: 30_000, leaseTtlSeconds: 3600, masquerade: false, leave: false })
})

t.test('precedence: flag > environment > file > default', async t => {
  const file = JSON.stringify({ 'wg-interface': 'fromfile', 'cni-network': 'filenet', 'resync-interval': '10s' })
  const o = parse(['--config', '/x.json', '--node-name', 'n1', '--wg-interface', 'fromflag'], { PODMESH_WG_INTERFACE: 'fromenv', PODMESH_CNI_NETWORK: 'envnet' }, file)
  t.equal(o.wgInterface, 'fromflag')
  t.equal(o.cniNetwork, 'envnet')
  t.equal(o.resyncIntervalMs, 10_000)
})

t.test('booleans, lists, durations, prefix from cluster', async t => {
  const o = parse(['--node-name', 'n1', '--leave', '--masquerade=true', '--etcd-endpoints', 'https://a:2379,https://b:2379', '--cluster', 'prod', '--lease-ttl', '5m'])
  t.equal(o.leave, true)
  t.equal(o.masquerade, true)
  t.strictSame(o.etcdEndpoints, ['https://a:2379', 'https://b:2379'])
  t.equal(o.prefix, '/podmesh/prod/')
  t.equal(o.leaseTtlSeconds, 300)
  t.equal(parse(['--node-name', 'n1', '--no-leave']).leave, false)
})

const bad: Array<[string, string[], Record<string, string>, RegExp]> = [
  ['unknown flag', ['--nope'], {}, /unknown flag --nope/],
  ['missing value', ['--node-name'], {}, /--node-name needs a value/],
  ['bad node name', ['--node-name', 'Node_1'], {}, /--node-name "Node_1"/],
  ['bad public address', ['--node-name', 'n', '--public-address', '192.0.2.300'], {}, /--public-address: "192.0.2.300" is not an IP/],
  ['interface too long', ['--node-name', 'n', '--wg-interface', 'a-very-long-ifname'], {}, /--wg-interface: "a-very-long-ifname" is not a valid interface name/],
  ['bad endpoint URL', ['--node-name', 'n', '--etcd-endpoints', 'ftp://etcd:2379'], {}, /--etcd-endpoints: "ftp:\/\/etcd:2379": scheme must be http or https/],
  ['endpoint without port', ['--node-name', 'n', '--etcd-endpoints', 'http://etcd'], {}, /--etcd-endpoints: "http:\/\/etcd" must be scheme:\/\/host:port/],
  ['credentials in endpoint', ['--node-name', 'n', '--etcd-endpoints', 'http://u:p@etcd:2379'], {}, /--etcd-endpoints: credentials in an endpoint URL \(user:password@\) are refused/],
  ['mixed schemes', ['--node-name', 'n', '--etcd-endpoints', 'http://a:2379,https://b:2379'], {}, /--etcd-endpoints: endpoints mix http and https/],
  ['cert without key', ['--node-name', 'n', '--etcd-cert', '/c.pem'], {}, /--etcd-key: a client certificate needs both/],
  ['user without password', ['--node-name', 'n', '--etcd-username', 'u'], {}, /--etcd-password: etcd auth needs both/],
  ['upper-case cluster', ['--node-name', 'n', '--cluster', 'Blue'], {}, /--cluster: "Blue" must be a DNS label/],
  ['bad prefix', ['--node-name', 'n', '--prefix', 'podmesh'], {}, /--prefix: "podmesh" must start with "\/"/],
  ['upper-case node name', ['--node-name', 'Node1'], {}, /--node-name "Node1" must be lower-case letters/],
  ['bad duration', ['--node-name', 'n', '--resync-interval', 'soon'], {}, /not a duration/],
  ['too short resync', ['--node-name', 'n', '--resync-interval', '10ms'], {}, /at least 100ms/],
  ['bad choice', ['--node-name', 'n', '--wg-mode', 'fast'], {}, /not one of auto, kernel, userspace/],
  ['bad env boolean', ['--node-name', 'n'], { PODMESH_LEAVE: 'maybe' }, /PODMESH_LEAVE: "maybe" is not true or false/],
  ['positional argument', ['run'], {}, /unexpected argument "run"/],
  ['bad cluster', ['--node-name', 'n', '--cluster', 'a/b'], {}, /--cluster: "a\/b" must be a DNS label/]
]
for (const [name, argv, env, msg] of bad) {
  t.test(`rejects: ${name}`, async t => { t.throws(() => parse(argv, env), { code: 'EOPTIONS', message: msg }) })
}

t.test('config file errors name the file and the key', async t => {
  t.throws(() => parse(['--config', '/etc/p.json', '--node-name', 'n'], {}, '{"bogus": 1}'), { message: /config file \/etc\/p.json: unknown option "bogus"/ })
  t.throws(() => parse(['--config', '/etc/p.json', '--node-name', 'n'], {}, '{not json'), { message: /config file \/etc\/p.json:/ })
})

t.test('secrets are redacted, help lists every option with its env name', async t => {
  const o = parse(['--node-name', 'n', '--etcd-username', 'u', '--etcd-password', 'hunter2', '--etcd-cert', '/c.pem', '--etcd-key', '/k.pem'])
  const r = redactOptions(o)
  t.equal(r.etcdPassword, '[redacted]')
  t.equal(r.etcdKey, '[redacted]')
  t.notMatch(JSON.stringify(r), /hunter2/)
  const help = helpText()
  for (const s of Object.values(OPTION_SPECS)) {
    t.match(help, `--${s.flag}`)
    t.match(help, `PODMESH_${s.flag.toUpperCase().replace(/-/g, '_')}`)
  }
  t.equal(parseDaemonOptions({ argv: ['--help'], env: {} }), 'help')
})

t.test('a malformed config file is reported by place, never by its text', async t => {
  const secret = 'hunter2-do-not-log'
  const broken = [
    `{"etcd-password": "${secret}", "node-name": "n1" "wg-interface": "x"}`, // missing comma
    `{"etcd-password": "${secret}`, // truncated
    `{\n  "etcd-password": '${secret}'\n}` // single quotes
  ]
  for (const text of broken) {
    const err = (() => { try { parse(['--config', '/etc/p.json'], {}, text) } catch (e) { return e as Error } })()
    t.match(err?.message, /^config file \/etc\/p\.json: not valid JSON/, 'names the file')
    t.notMatch(err?.message, /hunter2/, `no secret in "${err?.message ?? ''}"`)
  }
  // V8 gives a position for most errors (not for an unexpected token): shown as line and column.
  const multiline = (() => { try { parse(['--config', '/etc/p.json'], {}, `{\n  "etcd-password": "${secret}"\n  "node-name": "n1"\n}`) } catch (e) { return e as Error } })()
  t.match(multiline?.message, /not valid JSON at line 3, column 3$/, 'the place is a line and column')
})

t.test('credentials in an etcd endpoint URL are refused without quoting them', async t => {
  const err = (() => { try { parse(['--node-name', 'n1', '--etcd-endpoints', 'http://root:hunter2@127.0.0.1:2379']) } catch (e) { return e as Error } })()
  t.match(err?.message, /credentials in an endpoint URL .* are refused/)
  t.notMatch(err?.message, /hunter2/)
})

t.test('etcd options in the config file go through the shared etcd parser', async t => {
  const file = JSON.stringify({ 'etcd-endpoints': ['https://a:2379', 'https://b:2379'], 'etcd-username': 'u', 'etcd-password': 'hunter2' })
  const o = parse(['--config', '/etc/p.json', '--node-name', 'n1'], {}, file)
  t.strictSame(o.etcdEndpoints, ['https://a:2379', 'https://b:2379'])
  t.equal(o.etcdPassword, 'hunter2')
  // The environment still wins over the file, by the variable the shared table names.
  t.strictSame(parse(['--config', '/etc/p.json', '--node-name', 'n1'], { PODMESH_ETCD_ENDPOINTS: 'http://c:2379' }, JSON.stringify({ 'etcd-endpoints': 'http://a:2379' })).etcdEndpoints, ['http://c:2379'])
  t.throws(() => parse(['--config', '/etc/p.json', '--node-name', 'n1'], {}, JSON.stringify({ 'etcd-password': 12345, 'etcd-username': 'u' })), { code: 'EOPTIONS', message: /^--etcd-password: expected a string, got a number$/ })
  t.throws(() => parse(['--config', '/etc/p.json', '--node-name', 'n1'], {}, JSON.stringify({ 'etcd-endpoints': [] })), { code: 'EOPTIONS', message: /^--etcd-endpoints: no etcd endpoint given$/ })
})

// The etcd flags are declared once (lib/config/etcd-flags.ts): podmeshd's parser and
// podmeshctl's parser accept and refuse the same values with the same message, read the same
// environment variables, and list every flag in --help from the one table.
import t from 'tap'
import { assertHelpLists } from '../harness/help-lines'
import { parseArgs } from 'node:util'
import { ETCD_FIELDS, ETCD_FLAGS, type EtcdField } from '../../lib/config/etcd-flags'
import type { EtcdOptions } from '../../lib/config/etcd-options'
import { helpText, parseDaemonOptions } from '../../lib/config/daemon-options'
import { etcdOptionsOfFlags, globalFlagsHelp, globalOptions } from '../../lib/ctl/global-flags'

type Given = Partial<Record<EtcdField, string>>
type Outcome = EtcdOptions | { refused: string }

const argvOf = (g: Given): string[] => Object.entries(g).flatMap(([f, v]) => [`--${ETCD_FLAGS[f as EtcdField].flag}`, v as string])
const envOf = (g: Given): Record<string, string> => Object.fromEntries(Object.entries(g).map(([f, v]) => [ETCD_FLAGS[f as EtcdField].env, v as string]))

function daemon (argv: string[], env: Record<string, string>): Outcome {
  try {
    const o = parseDaemonOptions({ argv: ['--node-name', 'n1', ...argv], env })
    if (o === 'help') throw new Error('unexpected help')
    const out: EtcdOptions = { endpoints: o.etcdEndpoints, cluster: o.cluster, prefix: o.prefix }
    if (o.etcdCa !== undefined) out.caFile = o.etcdCa
    if (o.etcdCert !== undefined) out.certFile = o.etcdCert
    if (o.etcdKey !== undefined) out.keyFile = o.etcdKey
    if (o.etcdUsername !== undefined) out.username = o.etcdUsername
    if (o.etcdPassword !== undefined) out.password = o.etcdPassword
    return out
  } catch (e) {
    return { refused: (e as Error).message }
  }
}

function ctl (argv: string[], env: Record<string, string>): Outcome {
  try {
    const { values } = parseArgs({ args: ['status', ...argv], options: globalOptions, strict: true, allowPositionals: true })
    return etcdOptionsOfFlags(values, env)
  } catch (e) {
    return { refused: (e as Error).message }
  }
}

// Each row is what an operator gives; both parsers must agree on it, from flags and from the environment.
const rows: Given[] = [
  {},
  { endpoints: 'etcd:2379' },
  { endpoints: 'http://a:2379/' },
  { endpoints: 'https://a:2379, https://b:2379' },
  { endpoints: 'http://a:2379,https://b:2379' },
  { endpoints: 'ftp://x:1' },
  { endpoints: 'http://x' },
  { endpoints: 'http://x:2379/v3' },
  { endpoints: 'not a url' },
  { endpoints: 'http://root:hunter2@x:2379' },
  { endpoints: 'root:hunter2@x:2379' },
  { endpoints: ',' },
  { endpoints: '' },
  { endpoints: 'etcd:2379', caFile: '/ca.pem' },
  { caFile: '' },
  { certFile: '/c.pem' },
  { keyFile: '/k.pem' },
  { endpoints: 'etcd:2379', certFile: '/c.pem', keyFile: '/k.pem' },
  { username: 'u' },
  { password: 'hunter2' },
  { username: 'u', password: 'hunter2' },
  { username: '', password: '' },
  { cluster: 'prod' },
  { cluster: 'Blue_1' },
  { cluster: 'blue.1' },
  { cluster: 'a/b' },
  { cluster: '' },
  { prefix: '/x/y' },
  { prefix: '/x//y/' },
  { prefix: 'podmesh' },
  { cluster: 'blue', prefix: '/x/' }
]

t.test('every shared flag is exercised', async t => {
  for (const f of ETCD_FIELDS) t.ok(rows.some(r => r[f] !== undefined && r[f] !== ''), f)
})

t.test('podmeshd and podmeshctl agree on every value, from flags and from the environment', async t => {
  for (const r of rows) {
    const name = argvOf(r).join(' ') || '(nothing)'
    const fromFlags = ctl(argvOf(r), {})
    t.strictSame(daemon(argvOf(r), {}), fromFlags, `flags: ${name}`)
    t.strictSame(daemon([], envOf(r)), ctl([], envOf(r)), `env: ${name}`)
    // The same variable means the same thing as the flag (an empty flag is "not given" in both).
    t.strictSame(ctl([], envOf(r)), fromFlags, `env = flags: ${name}`)
    if ('refused' in fromFlags) {
      t.match(fromFlags.refused, /^--(etcd-[a-z]+|cluster|prefix): /, `the message names the flag: ${fromFlags.refused}`)
      t.notMatch(fromFlags.refused, /hunter2/, `no password in: ${fromFlags.refused}`)
    }
  }
})

t.test('the rules that matter hold in both', async t => {
  const refused = (o: Outcome): string => 'refused' in o ? o.refused : 'accepted'
  for (const parse of [daemon, ctl]) {
    t.match(refused(parse(['--etcd-endpoints', 'http://root:hunter2@x:2379'], {})), /^--etcd-endpoints: credentials in an endpoint URL \(user:password@\) are refused; use --etcd-username and --etcd-password$/)
    t.match(refused(parse(['--etcd-endpoints', 'ftp://x:1'], {})), /^--etcd-endpoints: "ftp:\/\/x:1": scheme must be http or https$/)
    t.match(refused(parse(['--etcd-username', 'u'], {})), /^--etcd-password: etcd auth needs both --etcd-username and --etcd-password$/)
    t.match(refused(parse(['--etcd-key', '/k.pem'], {})), /^--etcd-cert: a client certificate needs both --etcd-cert and --etcd-key$/)
    // A flag wins over its variable, in both.
    t.match(parse(['--etcd-endpoints', 'http://a:2379'], { PODMESH_ETCD_ENDPOINTS: 'ftp://x:1' }), { endpoints: ['http://a:2379'] })
    // The password comes from the environment, as the docs recommend.
    t.match(parse([], { PODMESH_ETCD_USERNAME: 'u', PODMESH_ETCD_PASSWORD: 'p' }), { username: 'u', password: 'p' })
  }
})

t.test('both --help texts list every shared flag from the one table', async t => {
  assertHelpLists(t, ETCD_FIELDS.map(f => ETCD_FLAGS[f]), [['podmeshd', helpText()], ['podmeshctl', globalFlagsHelp()]])
})

t.test('podmeshctl knows exactly the shared flags besides its own', async t => {
  t.strictSame(Object.keys(globalOptions).sort(), [...ETCD_FIELDS.map(f => ETCD_FLAGS[f].flag), 'help', 'output'].sort())
})

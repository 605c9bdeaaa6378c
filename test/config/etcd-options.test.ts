import t from 'tap'
import { redactEtcdOptions, resolveEtcdOptions } from '../../lib/config/etcd-options'

t.test('defaults', async t => {
  t.strictSame(resolveEtcdOptions({}), { endpoints: ['http://127.0.0.1:2379'], cluster: 'default', prefix: '/podmesh/default/' })
})

t.test('flags win over environment; cluster shapes the prefix', async t => {
  const env = { PODMESH_ETCD_ENDPOINTS: 'http://10.0.0.1:2379', PODMESH_CLUSTER: 'blue', PODMESH_ETCD_USERNAME: 'u', PODMESH_ETCD_PASSWORD: 'p' }
  const o = resolveEtcdOptions({ endpoints: '127.0.0.1:2379, 127.0.0.2:2379' }, env)
  t.strictSame(o.endpoints, ['http://127.0.0.1:2379', 'http://127.0.0.2:2379'])
  t.equal(o.prefix, '/podmesh/blue/')
  t.equal(o.username, 'u')
  t.equal(resolveEtcdOptions({ prefix: '/x/y/' }).prefix, '/x/y/')
})

t.test('TLS files make bare host:port https', async t => {
  const o = resolveEtcdOptions({ endpoints: 'etcd-1:2379', caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' })
  t.strictSame(o.endpoints, ['https://etcd-1:2379'])
  t.equal(o.caFile, '/ca.pem')
})

t.test('bad options are rejected with the flag named', async t => {
  t.throws(() => resolveEtcdOptions({ endpoints: 'ftp://x:1' }), { field: '--etcd-endpoints', problem: 'endpoint', message: /scheme must be http or https/ })
  t.throws(() => resolveEtcdOptions({ endpoints: 'http://x' }), { problem: 'endpoint', message: /explicit port/ })
  t.throws(() => resolveEtcdOptions({ endpoints: 'http://user:pw@x:2379' }), { problem: 'endpoint', message: /credentials in an endpoint/ })
  t.throws(() => resolveEtcdOptions({ endpoints: 'http://a:1,https://b:2' }), { message: /mix http and https/ })
  t.throws(() => resolveEtcdOptions({ certFile: '/c.pem' }), { field: '--etcd-key', problem: 'pair' })
  t.throws(() => resolveEtcdOptions({ password: 'x' }), { field: '--etcd-username', problem: 'pair' })
  t.throws(() => resolveEtcdOptions({ cluster: 'a/b' }), { field: '--cluster' })
  t.throws(() => resolveEtcdOptions({ prefix: 'podmesh' }), { field: '--prefix' })
  // The cluster is a DNS label, as podmeshd has always required (podmeshctl took Blue_1).
  t.throws(() => resolveEtcdOptions({ cluster: 'Blue_1' }), { field: '--cluster', message: /"Blue_1" must be a DNS label/ })
  t.equal(resolveEtcdOptions({ prefix: '/x/y' }).prefix, '/x/y/', 'a missing trailing / is added, as podmeshd did')
  t.throws(() => resolveEtcdOptions({ prefix: '/x//y/' }), { field: '--prefix' })
})

t.test('an endpoint error never quotes credentials', async t => {
  for (const endpoints of ['ftp://root:hunter2@x:1', 'http://root:hun ter2@x:1', 'root:hunter2@x']) {
    const err = (() => { try { resolveEtcdOptions({ endpoints }) } catch (e) { return e as Error } })()
    t.match(err?.message, /etcd|endpoint/, endpoints)
    t.notMatch(err?.message, /hunter2|hun ter2/, `no password in "${err?.message ?? ''}"`)
  }
})

t.test('redaction hides the password and nothing else', async t => {
  const o = resolveEtcdOptions({ username: 'root', password: 's3cret', endpoints: 'http://e:2379' })
  const r = redactEtcdOptions(o)
  t.equal(r.password, '[redacted]')
  t.equal(r.username, 'root')
  t.notMatch(JSON.stringify(r), /s3cret/)
  t.equal(o.password, 's3cret', 'the original is untouched')
  t.notOk('password' in redactEtcdOptions(resolveEtcdOptions({})))
})

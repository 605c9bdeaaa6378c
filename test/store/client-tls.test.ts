// TLS (self-made CA, client certificates required) and user/password auth to a real etcd; each
// TLS refusal (no or foreign client certificate, untrusted server, wrong server name) is named.
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { resolveEtcdOptions } from '../../lib/config/etcd-options'
import { connectStore, isStoreError, storeError } from '../../lib/store/client'
import { startEtcd } from '../harness/etcd'
import { tempDir } from '../harness/store'

const run = promisify(execFile)

async function makePki (dir: string): Promise<Record<'ca' | 'caKey' | 'server' | 'serverKey' | 'client' | 'clientKey' | 'otherCa' | 'otherClient' | 'otherClientKey', string>> {
  const f = (n: string): string => join(dir, n)
  const ssl = async (...args: string[]): Promise<void> => { await run('openssl', args, { cwd: dir }) }
  // A second CA, which etcd does not trust, signs a client certificate that must be refused.
  for (const ca of ['ca', 'other-ca']) {
    await ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${ca}.key`), '-out', f(`${ca}.pem`),
      '-days', '1', '-subj', `/CN=podmesh-test-${ca}`)
  }
  for (const [name, ext, ca] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth', 'ca'], ['client', 'extendedKeyUsage=clientAuth', 'ca'],
    ['other-client', 'extendedKeyUsage=clientAuth', 'other-ca']] as const) {
    await ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name === 'server' ? name : 'root'}`)
    await run('sh', ['-c', `printf '%b' "$EXT" > ${name}.ext`], { cwd: dir, env: { ...process.env, EXT: ext } })
    await ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.pem`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '1', '-extfile', f(`${name}.ext`))
  }
  return {
    ca: f('ca.pem'), caKey: f('ca.key'), server: f('server.pem'), serverKey: f('server.key'), client: f('client.pem'), clientKey: f('client.key'),
    otherCa: f('other-ca.pem'), otherClient: f('other-client.pem'), otherClientKey: f('other-client.key')
  }
}

t.test('TLS with client certificates', async t => {
  const pki = await makePki(await tempDir(t, 'pki'))
  const etcd = await startEtcd(t, {
    tls: { caFile: pki.ca, certFile: pki.server, keyFile: pki.serverKey, clientCertAuth: true, clientCertFile: pki.client, clientKeyFile: pki.clientKey }
  })
  const port = etcd.clientPort
  const o = resolveEtcdOptions({ endpoints: `127.0.0.1:${port}`, caFile: pki.ca, certFile: pki.client, keyFile: pki.clientKey })
  t.strictSame(o.endpoints, [`https://127.0.0.1:${port}`])
  const client = await connectStore(o)
  t.teardown(() => client.close())
  await client.put('/podmesh/tls/probe').value('{"v":1}')
  t.equal(await client.get('/podmesh/tls/probe').string(), '{"v":1}')

  // Each refusal is a StoreError of kind 'tls' (not 'unavailable': no retry cures it) naming the problem.
  const refused = async (what: string, flags: Parameters<typeof resolveEtcdOptions>[0], message: RegExp): Promise<void> => {
    const c = await connectStore(resolveEtcdOptions(flags), { callTimeoutMs: 5000 })
    t.teardown(() => c.close())
    const err = await c.get('/podmesh/tls/probe').string().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof Error, `${what} → error`)
    const translated = storeError('get probe', err)
    t.equal(translated.kind, 'tls', `${what} → kind tls (${translated.message})`)
    t.match(translated.message, message, `${what}: the message names the problem`)
    t.ok(translated.cause === err, 'cause kept')
  }
  await refused('no client certificate', { endpoints: `https://127.0.0.1:${port}`, caFile: pki.ca }, /etcd refused the client certificate/)
  await refused('a client certificate from a CA etcd does not trust', { endpoints: `https://127.0.0.1:${port}`, caFile: pki.ca, certFile: pki.otherClient, keyFile: pki.otherClientKey },
    /etcd refused the client certificate/)
  await refused('a CA that did not sign the server certificate', { endpoints: `https://127.0.0.1:${port}`, caFile: pki.otherCa, certFile: pki.client, keyFile: pki.clientKey },
    /certificate verify failed: etcd's server certificate is not signed by a CA in --etcd-ca/)
  // The same server, dialed by a name its certificate (IP:127.0.0.1 only) does not hold.
  await refused('a server certificate for another name', { endpoints: `https://localhost:${port}`, caFile: pki.ca, certFile: pki.client, keyFile: pki.clientKey },
    /server certificate does not name the host dialed .*localhost/)

  // A missing file is a clear StoreError, not a crash inside grpc.
  await t.rejects(connectStore({ ...o, caFile: join(pki.ca, 'nope') }), { code: 'ESTORE', kind: 'tls', message: /cannot read CA file/ })
})

t.test('user/password auth', async t => {
  const etcd = await startEtcd(t)
  await etcd.etcdctl(['user', 'add', 'root:rootpw'])
  await etcd.etcdctl(['user', 'grant-role', 'root', 'root']).catch(() => '')
  await etcd.etcdctl(['auth', 'enable'])
  const good = await connectStore(resolveEtcdOptions({ endpoints: etcd.endpoint, username: 'root', password: 'rootpw' }))
  t.teardown(() => good.close())
  await good.put('/podmesh/auth/probe').value('{"v":1}')
  t.equal(await good.get('/podmesh/auth/probe').string(), '{"v":1}')

  const bad = await connectStore(resolveEtcdOptions({ endpoints: etcd.endpoint, username: 'root', password: 'wrong' }), { callTimeoutMs: 2000 })
  t.teardown(() => bad.close())
  const err = await bad.get('/podmesh/auth/probe').string().then(() => undefined, (e: unknown) => e)
  const translated = storeError('get probe', err)
  t.ok(isStoreError(translated))
  t.equal(translated.kind, 'auth', `wrong password → kind auth (${String((err as Error)?.message)})`)
  t.ok(translated.cause === err, 'cause kept')
})

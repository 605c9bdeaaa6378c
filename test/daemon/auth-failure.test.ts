// podmeshd's message for an etcd authentication failure names the user it tried and where the
// credentials come from, never the password (the lab runs it for real: test/lab/etcd-auth.test.ts).
import t from 'tap'
import { authFailure } from '../../lib/daemon/store-session'
import { StoreError } from '../../lib/store/client'

t.test('a wrong password: the user is named', async t => {
  const e = new StoreError('auth', 'get /podmesh/default/config', '3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password')
  const out = authFailure(e, 'podmesh-node-node-5') as StoreError
  t.equal(out.kind, 'auth')
  t.match(out.message, /authentication as etcd user "podmesh-node-node-5" failed: wrong user name or password/)
  t.match(out.message, /PODMESH_ETCD_PASSWORD/)
  t.equal(out.cause, e, 'etcd\'s own error kept as the cause')
})

t.test('no user given to an etcd with auth on', async t => {
  const e = new StoreError('other', 'get /podmesh/default/config', '3 INVALID_ARGUMENT: etcdserver: user name is empty')
  t.match((authFailure(e, undefined) as Error).message, /authentication on and no etcd user was given/)
})

t.test('other errors pass through', async t => {
  const e = new StoreError('unavailable', 'get x', '14 UNAVAILABLE')
  t.equal(authFailure(e, 'u'), e)
  const plain = new Error('x')
  t.equal(authFailure(plain, 'u'), plain)
})

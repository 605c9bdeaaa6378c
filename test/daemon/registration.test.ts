// Registration against a real etcd: the watch's view of the own record raises a doubt only when
// it differs from what the node published; a doubt is settled by a check that re-asserts.
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { acquireNode } from '../../lib/store/node-lease'
import { parseNodeRecord } from '../../lib/store/node-record-parse'
import { nodeKey } from '../../lib/store/keys'
import { Registration, type RegistrationState } from '../../lib/daemon/registration'
import { startEtcd } from '../harness/etcd'
import { fields, tempDir, testClient, waitFor } from '../harness/store'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' } })

t.test('registration', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/registration/'
  const lease = await acquireNode({ client, prefix, config, name: 'n1', stateDir: await tempDir(t), record: { ...fields(1), location: 'rack-1', vxlan: { mac: '02:00:00:00:00:01' } } })
  t.teardown(async () => await lease.close())
  const r = new Registration(lease)
  t.teardown(() => r.stop())
  const states: RegistrationState[] = []
  const writes: string[] = []
  r.on('state', s => states.push(s.state))
  r.on('reasserted', w => writes.push(w.how))

  // The watch hands over a parsed record: same content, other field order.
  const stored = await client.get(nodeKey(prefix, 'n1')).string()
  const parsed = parseNodeRecord(nodeKey(prefix, 'n1'), stored ?? '', config)
  t.not(JSON.stringify(parsed), JSON.stringify(lease.record), 'the parsed record serialises differently')
  r.observe(parsed)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.strictSame(states, [], 'the same record raises no doubt')
  t.ok(r.held)

  await client.delete().key(nodeKey(prefix, 'n1'))
  r.observe(undefined)
  t.equal(r.state, 'doubted', 'a missing own record is doubted at once, before any I/O')
  t.notOk(r.held)
  await waitFor('held again', () => r.held)
  t.strictSame(states, ['doubted', 'held'])
  t.strictSame(writes, ['reasserted'])
  t.ok(await client.get(nodeKey(prefix, 'n1')).string(), 'the record is back')

  r.observe({ ...parsed, endpoint: '192.0.2.99:51820' })
  await waitFor('held again after an altered view', () => r.held && states.length === 4)
  t.strictSame(states, ['doubted', 'held', 'doubted', 'held'])
  t.strictSame(writes, ['reasserted'], 'etcd held the right record: the check wrote nothing')
})

// Acceptance: `etcdctl get --prefix /podmesh/` is a readable topology — every value is JSON with "v": 1.
import t from 'tap'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { writeConfig } from '../../lib/store/config-store'
import { acquireNode } from '../../lib/store/node-lease'
import { publishStatus } from '../../lib/store/status'
import { startEtcd } from '../harness/etcd'
import { fields, tempDir, testClient } from '../harness/store'

t.test('etcdctl shows only readable JSON', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/default/'
  const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, ipv6: { cidr: 'fd00:10:244::/56' } })
  await writeConfig(client, prefix, config)
  for (let i = 0; i < 3; i++) {
    const h = await acquireNode({ client, prefix, config, name: `node-${i}`, stateDir: await tempDir(t), record: { ...fields(i), vxlan: { mac: `02:00:00:00:00:0${i + 1}` }, location: 'lab' } })
    t.teardown(async () => await h.close())
  }
  const s = await publishStatus(client, prefix, 'node-0', { appliedGeneration: 0, peers: {} })
  t.teardown(async () => await s.close())

  const out = await etcd.etcdctl(['get', '--prefix', '/podmesh/'])
  const lines = out.split('\n').filter(l => l !== '')
  t.equal(lines.length % 2, 0, 'key/value pairs')
  const pairs: Array<[string, string]> = []
  for (let i = 0; i < lines.length; i += 2) pairs.push([lines[i] ?? '', lines[i + 1] ?? ''])
  t.equal(pairs.length, 1 + 3 + 6 + 1, 'config, 3 records, 6 subnet leases, 1 status')
  for (const [key, value] of pairs) {
    let v: unknown
    t.doesNotThrow(() => { v = JSON.parse(value) }, `${key} is JSON`)
    t.equal((v as { v?: number }).v, 1, `${key} is versioned`)
  }
  t.ok(pairs.some(([k]) => k === '/podmesh/default/subnets/fd00:10:244::-64' || k.startsWith('/podmesh/default/subnets/fd00:10:244:')), 'IPv6 subnet keys are readable')
})

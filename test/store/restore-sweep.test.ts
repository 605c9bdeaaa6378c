// removeUnasserted against a real etcd: after a restore, a record whose generation is still at
// most what this node knew goes with its subnet leases and status; re-asserted, unknown and own
// records stay.
import t from 'tap'
import { removeUnasserted } from '../../lib/store/restore-sweep'
import { nodeKey, statusKey, subnetKey } from '../../lib/store/keys'
import { formatSubnetValue } from '../../lib/store/subnet-value'
import { startEtcd } from '../harness/etcd'
import { dump, testClient, testKey } from '../harness/store'

t.test('records nobody re-asserted since the restore are removed, with their subnets and status', async t => {
  const etcd = await startEtcd(t)
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/sweep/'
  const put = async (name: string, i: number, generation: number): Promise<void> => {
    const cidr = `10.244.${i}.0/24`
    await client.put(subnetKey(prefix, cidr)).value(formatSubnetValue(name))
    await client.put(nodeKey(prefix, name)).value(JSON.stringify({ v: 1, name, generation, endpoint: `192.0.2.${i}:51820`, publicKey: testKey(i), podCIDRs: [cidr], mtu: 1420 }))
    await client.put(statusKey(prefix, name)).value(JSON.stringify({ v: 1, node: name }))
  }
  await put('dead', 1, 3) // restored as it was: generation 3, as known
  await put('older', 2, 1) // restored from before its last change: generation 1, known 4
  await put('alive', 3, 5) // re-asserted after the restore: generation above the known 4
  await put('stranger', 4, 0) // not known before the restore: not ours to judge
  await put('self', 5, 2)
  await client.put(nodeKey(prefix, 'garbled')).value('{not json')
  const known = new Map([['dead', 3], ['older', 4], ['alive', 4], ['self', 9], ['garbled', 1]])

  const removed = await removeUnasserted(client, prefix, { known, except: 'self' })
  t.strictSame(removed, ['dead', 'older'])
  const left = [...(await dump(client, prefix)).keys()].sort()
  t.strictSame(left, [
    nodeKey(prefix, 'alive'), nodeKey(prefix, 'garbled'), nodeKey(prefix, 'self'), nodeKey(prefix, 'stranger'),
    statusKey(prefix, 'alive'), statusKey(prefix, 'self'), statusKey(prefix, 'stranger'),
    subnetKey(prefix, '10.244.3.0/24'), subnetKey(prefix, '10.244.4.0/24'), subnetKey(prefix, '10.244.5.0/24')
  ].sort())
  t.strictSame(await removeUnasserted(client, prefix, { known, except: 'self' }), [], 'a second sweep finds nothing')
})

// The VXLAN device against the real kernel, in a namespace of its own: a remote whose underlay
// address moved gets its FDB entry replaced — with pruning or without (etcd away, registration
// in doubt) — never left on the old address; a local address change re-creates the device with
// its entries.
import t from 'tap'
import type { FdbEntry, VxlanDevice } from '../../lib/mesh/types'
import { Lab } from '../harness/netns'

const AGENT = 'test/dataplane/vxlan-agent.ts'

t.test('vxlan: FDB entries follow a remote underlay address, with or without pruning', async t => {
  const lab = new Lab({ t })
  const ns = await lab.netns('vx')
  const agent = ns.spawnTs(AGENT)
  const ifname = lab.ifname('x')
  const device = (remoteIp: string, localIp = '192.0.2.11'): VxlanDevice => ({
    ifname, vni: 1, port: 4789, mtu: 1450, mac: '02:00:00:00:00:01', localIp, addresses: ['10.244.1.0/32'],
    remotes: [{ node: 'node-2', mac: '02:00:00:00:00:02', underlayIp: remoteIp, tunnelIps: ['10.244.2.0'] }]
  })
  const fdb = async (): Promise<FdbEntry[]> => (await agent.request<{ fdb: FdbEntry[] }>('observe', { ifname })).fdb

  await agent.request('sync', { desired: device('192.0.2.12'), prune: true })
  t.strictSame(await fdb(), [{ mac: '02:00:00:00:00:02', dst: '192.0.2.12' }], 'created with the remote')

  await agent.request('sync', { desired: device('192.0.2.112'), prune: true })
  t.strictSame(await fdb(), [{ mac: '02:00:00:00:00:02', dst: '192.0.2.112' }], 'remote moved: its entry points at the new address')

  await agent.request('sync', { desired: device('192.0.2.212'), prune: false })
  t.strictSame(await fdb(), [{ mac: '02:00:00:00:00:02', dst: '192.0.2.212' }], 'also while nothing is pruned')

  const recreated = await agent.request<{ recreate: boolean }>('sync', { desired: device('192.0.2.212', '192.0.2.111'), prune: true })
  t.equal(recreated.recreate, true, 'a new local address re-creates the device')
  const after = await agent.request<{ localIp: string, fdb: FdbEntry[], neighbors: unknown[], addresses: string[] }>('observe', { ifname })
  t.equal(after.localIp, '192.0.2.111')
  t.strictSame(after.fdb, [{ mac: '02:00:00:00:00:02', dst: '192.0.2.212' }], 'with its FDB entry')
  t.strictSame(after.neighbors, [{ ip: '10.244.2.0', mac: '02:00:00:00:00:02' }], 'its neighbour')
  t.strictSame(after.addresses, ['10.244.1.0/32'], 'and its address')
  await agent.stop()
})

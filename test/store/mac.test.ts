// One MAC rule: what a node record may carry is what the VXLAN backend keeps in its state dir.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isMac } from '../../lib/store/mac'
import { parseNetworkConfig } from '../../lib/config/network-parse'
import { parseNodeRecord } from '../../lib/store/node-record-parse'
import { VXLAN_MAC_FILE, loadOrCreateVxlanMac } from '../../lib/dataplane/vxlan/mac'

const config = parseNetworkConfig({ v: 1, ipv4: { cidr: '10.244.0.0/16' }, backend: { type: 'vxlan' } })
const recordTakes = (mac: string): boolean => {
  const value = JSON.stringify({ v: 1, name: 'node-1', generation: 0, endpoint: '192.0.2.11:4789', podCIDRs: ['10.244.1.0/24'], vxlan: { mac }, mtu: 1450 })
  try { parseNodeRecord('/podmesh/default/nodes/node-1', value, config); return true } catch { return false }
}
const stateDirKeeps = async (dir: string, mac: string): Promise<boolean> => {
  await writeFile(join(dir, VXLAN_MAC_FILE), mac)
  try { return await loadOrCreateVxlanMac(dir) === mac } catch { return false }
}

t.test('node records and the state dir accept the same MACs', async t => {
  const dir = t.testdir()
  for (const mac of ['02:42:ac:11:00:02', '02:42:AC:11:00:02', '02-42-ac-11-00-02', '02:42:ac:11:00', '0242ac110002']) {
    t.equal(recordTakes(mac), isMac(mac), `record: ${mac}`)
    t.equal(await stateDirKeeps(dir, mac), isMac(mac), `state dir: ${mac}`)
  }
  t.ok(recordTakes('02:42:ac:11:00:02'), 'the fixture record is valid')
})

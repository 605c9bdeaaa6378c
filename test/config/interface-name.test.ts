// One interface-name rule: podmeshd's --wg-interface/--vxlan-interface/--cni-bridge flags and the
// CNI config's bridge accept and refuse the same names (the CNI config took "br:0"-like names
// the daemon refused, by a second, looser pattern).
import t from 'tap'
import { isInterfaceName } from '../../lib/config/interface-name'
import { parseDaemonOptions } from '../../lib/config/daemon-options'
import { renderConflist } from '../../lib/mesh/cni-config'

const names = ['podmesh0', 'podmesh-br0', 'a.b_c', 'x'.repeat(15), 'x'.repeat(16), '', 'br@0', 'br#0', 'brü0', 'br:0', 'br/0', 'br 0', '.', '..']

const daemonTakes = (flag: string, name: string): boolean => {
  try { parseDaemonOptions({ argv: ['--node-name', 'n1', `--${flag}=${name}`], env: {} }); return true } catch { return false }
}
const cniTakes = (bridge: string): boolean => {
  try { renderConflist({ networkName: 'podmesh', bridge, podCIDRs: ['10.244.1.0/24'], clusterCIDRs: ['10.244.0.0/16'], mtu: 1420 }); return true } catch { return false }
}

t.test('podmeshd and the CNI config apply the same interface-name rule', async t => {
  for (const name of names) {
    const want = isInterfaceName(name)
    for (const flag of ['wg-interface', 'vxlan-interface', 'cni-bridge']) t.equal(daemonTakes(flag, name), want, `--${flag} "${name}"`)
    t.equal(cniTakes(name), want, `CNI bridge "${name}"`)
  }
  t.ok(isInterfaceName('podmesh0'))
  t.notOk(isInterfaceName('x'.repeat(16)))
})

// --masquerade: pod traffic leaving all pod CIDRs is NATed to the node; pod↔pod is not.
import t from 'tap'
import { Lab, nsExec, type LabNode } from './cluster'
import { remoteAddressSeen } from './mesh-suite'

t.setTimeout(5 * 60_000)
let lab: Lab
t.before(async () => { lab = await Lab.create({ nodes: 2, podsPerNode: 1, backend: 'wireguard', extraDaemonArgs: ['--masquerade'] }) })
t.teardown(async () => { await lab?.destroy() })

t.test('a pod reaches an address outside the cluster only through masquerade', async t => {
  const [n1] = lab.nodes as [LabNode]
  // The hub has no route to the pod ranges: a reply can only come back to the node's own address.
  t.ok(await lab.ping(n1.pods[0]!.ns, '192.0.2.1', { count: 2 }), 'pod → 192.0.2.1 answered')
  t.match(await nsExec(n1.ns, ['iptables', '-t', 'nat', '-S', 'PODMESH-MASQ']), /-d 10\.244\.0\.0\/16 -j RETURN/)
})

t.test('pod to remote pod keeps the pod source address', async t => {
  const [n1, n2] = lab.nodes as [LabNode, LabNode]
  t.equal(await remoteAddressSeen(lab, n2.pods[0]!.ns, n2.pods[0]!.ips[0]!, n1.pods[0]!.ns), n1.pods[0]!.ips[0])
})

/**
 * The whole nat table of one family, as `-S` prints it. Listing the table, not the chain, makes
 * absence an answer: a failed command (no binary, no namespace) throws instead of reading as "no chain".
 */
const natTable = async (n: LabNode, bin: 'iptables' | 'ip6tables'): Promise<string> => await nsExec(n.ns, [bin, '-t', 'nat', '-S'])

t.test('without --masquerade the chain is absent', async t => {
  const [, n2] = lab.nodes as [LabNode, LabNode]
  for (const bin of ['iptables', 'ip6tables'] as const) t.match(await natTable(n2, bin), /^-N PODMESH-MASQ$/m, `${bin}: node-2 has the chain while it runs with --masquerade`)
  await n2.stop()
  await n2.start(['--masquerade=false'])
  for (const bin of ['iptables', 'ip6tables'] as const) {
    const table = await natTable(n2, bin)
    t.match(table, /^-P POSTROUTING ACCEPT$/m, `${bin}: the nat table was listed`)
    t.notMatch(table, /PODMESH-MASQ/, `${bin}: no PODMESH-MASQ chain and no jump to it`)
  }
})

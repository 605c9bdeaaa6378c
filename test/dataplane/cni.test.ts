// The whole CNI path on one node, with the real plugins: the bridge made by ensureBridge, the
// conflist from renderConflist written by writeConflist, two pods added by the lab's runtime
// (one through its library API, one through its CLI inside the node namespace).
import t from 'tap'
import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import type { BridgeChange } from '../../lib/dataplane/cni/bridge'
import { writeConflist } from '../../lib/dataplane/cni/conflist-file'
import { containsIp, parseCidr, parseIp } from '../../lib/ipam/cidr'
import { gatewayAddresses, renderConflist } from '../../lib/mesh/cni-config'
import { cniAdd, cniDel, type CniResult } from '../lab/cni-runtime'
import { addNetns, ipJson, pings, runTag, runTsIn } from './cni-netns'

interface IpAddr { ifname: string, mtu: number, addr_info: Array<{ family: string, local: string, prefixlen: number, scope: string }> }

const MTU = 1380

const ensureBridge = async (netns: string, spec: { name: string, addresses: string[], mtu: number }): Promise<BridgeChange> => {
  const [step] = JSON.parse(await runTsIn(netns, 'test/dataplane/cni-ensure-bridge.ts', [JSON.stringify([spec])])) as Array<{ change?: BridgeChange, error?: unknown }>
  if (step?.change === undefined) throw new Error(`ensureBridge failed: ${JSON.stringify(step)}`)
  return step.change
}

async function globalAddrs (netns: string, dev: string): Promise<{ addrs: string[], mtu: number }> {
  const [link] = await ipJson<IpAddr[]>(netns, ['addr', 'show', 'dev', dev])
  if (link === undefined) throw new Error(`${dev} missing in ${netns}`)
  return { addrs: link.addr_info.filter(a => a.scope === 'global').map(a => `${a.local}/${a.prefixlen}`).sort(), mtu: link.mtu }
}

const linkNames = async (netns: string): Promise<string[]> =>
  (await ipJson<Array<{ ifname: string }>>(netns, ['link', 'show'])).map(l => l.ifname)

const resultAddrs = (r: CniResult): string[] => (r.ips ?? []).map(i => i.address).sort()
const ipOf = (cidr: string): string => cidr.split('/')[0] as string

t.test('pods on a podmesh bridge: addresses from the node subnet, pod↔pod and node→pod, clean DEL', async t => {
  const tag = runTag()
  const x = 1 + Math.floor(Math.random() * 250)
  const node = await addNetns(t, tag, 'node')
  const pods = [await addNetns(t, tag, 'pod1'), await addNetns(t, tag, 'pod2')] as const
  const dir = t.testdir()
  const netd = join(dir, 'net.d')
  const dataDir = join(dir, 'ipam')
  const cacheDir = join(dir, 'cache')
  const bridge = `pmbr${tag}`.slice(0, 15)
  const podCIDRs = [`10.${x}.1.0/24`, `fd00:${x.toString(16)}:1::/64`]
  const subnets = podCIDRs.map(c => parseCidr(c))
  const name = `pm${tag}`

  // The node: bridge first, then the conflist.
  const gateways = gatewayAddresses(podCIDRs)
  t.strictSame(gateways, [`10.${x}.1.1/24`, `fd00:${x.toString(16)}:1::1/64`])
  const created = await ensureBridge(node, { name: bridge, addresses: gateways, mtu: MTU })
  t.match(created, { created: true, addedAddresses: gateways })
  const conflist = renderConflist({
    networkName: name, bridge, podCIDRs, clusterCIDRs: [`10.${x}.0.0/16`, `fd00:${x.toString(16)}::/32`], mtu: MTU, dataDir
  })
  t.equal(await writeConflist(netd, name, conflist), true)
  const conflistPath = join(netd, `10-${name}.conflist`)

  // Pod 1 through the library, pod 2 through the CLI run inside the node namespace.
  const common = { conflistPath, hostNetns: node, cacheDir }
  t.teardown(async () => {
    await cniDel({ ...common, containerId: 'ctr-1', netns: pods[0] }).catch(() => {})
    await cniDel({ ...common, containerId: 'ctr-2', netns: pods[1] }).catch(() => {})
  })
  const r1 = await cniAdd({ ...common, containerId: 'ctr-1', netns: pods[0] })
  const r2 = JSON.parse(await runTsIn(node, 'test/lab/cni-runtime.ts', ['add', conflistPath, pods[1], 'ctr-2', '--cache-dir', cacheDir])) as CniResult

  for (const [i, r] of [r1, r2].entries()) {
    const pod = pods[i] as string
    t.equal(r.cniVersion, '1.0.0')
    t.equal(r.ips?.length, 2, `${pod}: one address per family`)
    for (const s of subnets) {
      const inSubnet = (r.ips ?? []).filter(ip => { const p = parseIp(ipOf(ip.address)); return containsIp(s, p.family, p.addr) })
      t.equal(inSubnet.length, 1, `${pod}: one address in the IPv${s.family} pod subnet`)
      t.equal(inSubnet[0]?.gateway, ipOf(gateways[s.family === 4 ? 0 : 1] as string), `${pod}: IPv${s.family} gateway is the bridge`)
    }
    const kernel = await globalAddrs(pod, 'eth0')
    t.strictSame(kernel.addrs, resultAddrs(r), `${pod}: the kernel holds the addresses of the result`)
    t.equal(kernel.mtu, MTU, `${pod}: MTU is the conflist's`)
    const routes = await ipJson<Array<{ dst: string, gateway?: string }>>(pod, ['route', 'show'])
    t.ok(routes.some(rt => rt.dst === `10.${x}.0.0/16` && rt.gateway === `10.${x}.1.1`), `${pod}: cluster route via the gateway`)
    t.ok(routes.some(rt => rt.dst === 'default' && rt.gateway === `10.${x}.1.1`), `${pod}: default route via the gateway`)
  }
  t.not(resultAddrs(r1).join(), resultAddrs(r2).join(), 'pods got different addresses')

  const ips1 = resultAddrs(r1).map(ipOf)
  const ips2 = resultAddrs(r2).map(ipOf)
  for (const ip of ips2) t.ok(await pings(pods[0], ip), `pod1 → pod2 ${ip}`)
  for (const ip of ips1) t.ok(await pings(pods[1], ip), `pod2 → pod1 ${ip}`)
  for (const ip of [...ips1, ...ips2]) t.ok(await pings(node, ip), `node → pod ${ip}`)

  // The plugins neither moved the bridge's addresses nor its MTU: a second ensureBridge is a no-op.
  t.strictSame((await globalAddrs(node, bridge)).addrs, [...gateways].sort())
  t.strictSame(await ensureBridge(node, { name: bridge, addresses: gateways, mtu: MTU }),
    { created: false, addedAddresses: [], removedAddresses: [], broughtUp: false }, 'second ensureBridge changes nothing')
  t.equal(await writeConflist(netd, name, conflist), false, 'same conflist: not rewritten')

  // DEL pod 1: its addresses are free again and its veth is gone; pod 2 is untouched.
  const hostVeth1 = r1.interfaces?.find(i => i.sandbox === undefined && i.name !== bridge)?.name
  t.ok(hostVeth1 !== undefined && (await linkNames(node)).includes(hostVeth1), 'pod1 host veth exists before DEL')
  const reserved = async (): Promise<string[]> => (await fs.readdir(join(dataDir, name))).filter(f => !f.startsWith('last_reserved') && f !== 'lock').sort()
  t.strictSame(await reserved(), [...ips1, ...ips2].sort(), 'host-local holds one file per pod address')
  await cniDel({ ...common, containerId: 'ctr-1', netns: pods[0] })
  t.strictSame(await reserved(), [...ips2].sort(), 'pod1 addresses released')
  t.notOk((await linkNames(pods[0])).includes('eth0'), 'pod1 eth0 gone')
  t.notOk((await linkNames(node)).includes(hostVeth1 as string), 'pod1 host veth gone')
  t.ok(await pings(node, ips2[0] as string), 'pod2 still reachable')
  t.notOk(await pings(node, ips1[0] as string), 'pod1 no longer answers (the ping check can fail)')

  await runTsIn(node, 'test/lab/cni-runtime.ts', ['del', conflistPath, pods[1], 'ctr-2', '--cache-dir', cacheDir])
  t.strictSame(await reserved(), [], 'pod2 addresses released (CLI del)')
  t.strictSame(await fs.readdir(cacheDir), [], 'no cached results left')
  t.notOk((await linkNames(pods[1])).includes('eth0'), 'pod2 eth0 gone')
})

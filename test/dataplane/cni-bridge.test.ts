// ensureBridge against the real kernel, in a namespace of its own. One child process runs a
// sequence of specs (see cni-ensure-bridge.ts) so each step sees the previous step's result.
import t from 'tap'
import type { BridgeChange, BridgeSpec } from '../../lib/dataplane/cni/bridge'
import { addNetns, ipJson, run, runTag, runTsIn } from './cni-netns'

type Step = { change: BridgeChange } | { error: { code: string, reason: string, message: string } }
interface IpAddr { ifname: string, mtu: number, flags: string[], addr_info: Array<{ family: string, local: string, prefixlen: number, scope: string }> }

const ensure = async (netns: string, specs: BridgeSpec[]): Promise<Step[]> =>
  JSON.parse(await runTsIn(netns, 'test/dataplane/cni-ensure-bridge.ts', [JSON.stringify(specs)])) as Step[]

async function addrs (netns: string, dev: string): Promise<{ global: string[], linkLocal: number, mtu: number, up: boolean }> {
  const [link] = await ipJson<IpAddr[]>(netns, ['addr', 'show', 'dev', dev])
  if (link === undefined) throw new Error(`${dev} missing in ${netns}`)
  return {
    global: link.addr_info.filter(a => a.scope !== 'link').map(a => `${a.local}/${a.prefixlen}`).sort(),
    linkLocal: link.addr_info.filter(a => a.scope === 'link').length,
    mtu: link.mtu,
    up: link.flags.includes('UP')
  }
}

const unchanged: BridgeChange = { created: false, addedAddresses: [], removedAddresses: [], broughtUp: false }

t.test('ensureBridge creates, converges, repairs drift, and touches only its bridge', async t => {
  const tag = runTag()
  const ns = await addNetns(t, tag, 'node')
  const br = `pmbr${tag}`.slice(0, 15)
  const other = `pmo${tag}`.slice(0, 15)
  const v1 = { name: br, addresses: ['10.31.1.1/24', 'fd00:31:1::1/64'], mtu: 1420 }

  const [create, again] = await ensure(ns, [v1, v1])
  t.strictSame(create, { change: { created: true, addedAddresses: ['10.31.1.1/24', 'fd00:31:1::1/64'], removedAddresses: [], broughtUp: true } })
  t.strictSame(again, { change: unchanged }, 'second run changes nothing')
  const a1 = await addrs(ns, br)
  t.strictSame(a1.global, ['10.31.1.1/24', 'fd00:31:1::1/64'])
  t.equal(a1.mtu, 1420)
  t.ok(a1.up)
  const [link] = await ipJson<Array<{ linkinfo?: { info_kind?: string } }>>(ns, ['-d', 'link', 'show', 'dev', br])
  t.equal(link?.linkinfo?.info_kind, 'bridge')
  const v6 = (await ipJson<IpAddr[]>(ns, ['addr', 'show', 'dev', br]))[0]?.addr_info.find(a => a.local === 'fd00:31:1::1')
  t.notMatch(JSON.stringify(v6), 'tentative', 'gateway IPv6 address is usable at once (nodad)')

  // Drift by hand: a foreign address on another link, the bridge down, its MTU changed,
  // one gateway address removed. The next run repairs the bridge and leaves the other link alone.
  await run('ip', ['-n', ns, 'link', 'add', other, 'type', 'bridge'])
  await run('ip', ['-n', ns, 'addr', 'add', '10.31.9.1/24', 'dev', other])
  await run('ip', ['-n', ns, 'link', 'set', br, 'down', 'mtu', '1500'])
  await run('ip', ['-n', ns, 'addr', 'del', '10.31.1.1/24', 'dev', br])
  const [repair] = await ensure(ns, [v1])
  // (Link down also flushes the IPv6 address: the kernel drops IPv6 addresses of a down link.)
  t.strictSame(repair, { change: { created: false, mtu: { from: 1500, to: 1420 }, addedAddresses: ['10.31.1.1/24', 'fd00:31:1::1/64'], removedAddresses: [], broughtUp: true } })
  t.strictSame((await addrs(ns, br)).global, ['10.31.1.1/24', 'fd00:31:1::1/64'])

  // A new subnet (e.g. the node got another lease): old addresses go, link-local stays.
  const v2 = { name: br, addresses: ['10.31.2.1/24', 'fd00:31:2::1/64'], mtu: 1420 }
  const [resubnet, settled] = await ensure(ns, [v2, v2])
  t.strictSame(resubnet, { change: { created: false, addedAddresses: ['10.31.2.1/24', 'fd00:31:2::1/64'], removedAddresses: ['10.31.1.1/24', 'fd00:31:1::1/64'], broughtUp: false } })
  t.strictSame(settled, { change: unchanged })
  const a2 = await addrs(ns, br)
  t.strictSame(a2.global, ['10.31.2.1/24', 'fd00:31:2::1/64'])
  t.equal(a2.linkLocal, 1, 'the kernel\'s link-local address is not treated as stale')
  t.strictSame((await addrs(ns, other)).global, ['10.31.9.1/24'], 'the other link is untouched')
})

t.test('ensureBridge refuses a name held by a link that is not a bridge', async t => {
  const tag = runTag()
  const ns = await addNetns(t, tag, 'veth')
  const name = `pmv${tag}`.slice(0, 15)
  await run('ip', ['-n', ns, 'link', 'add', name, 'type', 'veth', 'peer', 'name', `${name.slice(0, 13)}p`])
  const [step] = await ensure(ns, [{ name, addresses: ['10.32.1.1/24'], mtu: 1420 }])
  t.match(step, { error: { code: 'EBRIDGE', reason: 'not-a-bridge' } })
  t.match(JSON.stringify(step), name, 'the error names the link')
  t.strictSame((await addrs(ns, name)).global, [], 'nothing was added to the veth')
})

t.test('the bridge follows the pod MTU down and up, but never above its smallest port (a pod made under a lower MTU)', async t => {
  const tag = runTag()
  const ns = await addNetns(t, tag, 'ports')
  const br = `pmbp${tag}`.slice(0, 15)
  const port = `pmp${tag}`.slice(0, 15)
  const spec = (mtu: number): BridgeSpec => ({ name: br, addresses: ['10.33.1.1/24'], mtu })
  await ensure(ns, [spec(1440)])
  t.equal((await addrs(ns, br)).mtu, 1440)
  // A pod's host-side veth at 1420, as the bridge plugin attaches it while the pod MTU is 1420.
  await run('ip', ['-n', ns, 'link', 'add', port, 'mtu', '1420', 'type', 'veth', 'peer', 'name', `${port.slice(0, 13)}p`, 'mtu', '1420'])
  await run('ip', ['-n', ns, 'link', 'set', port, 'master', br, 'up'])
  // (The kernel may already have lowered the bridge to its new port's MTU by itself.)
  await ensure(ns, [spec(1420)])
  t.equal((await addrs(ns, br)).mtu, 1420)
  // The pod MTU goes back up while that pod still runs: the bridge stays at the pod's 1420.
  const [up] = await ensure(ns, [spec(1440)])
  t.strictSame(up, { change: unchanged })
  t.equal((await addrs(ns, br)).mtu, 1420)
  // The pod goes: the bridge takes the pod MTU.
  await run('ip', ['-n', ns, 'link', 'del', port])
  await ensure(ns, [spec(1440)])
  t.equal((await addrs(ns, br)).mtu, 1440)
})

t.test('the bridge keeps its MAC when the port with the lowest MAC leaves (pods keep their gateway)', async t => {
  const tag = runTag()
  const ns = await addNetns(t, tag, 'mac')
  const br = `pmbm${tag}`.slice(0, 15)
  const mac = async (dev: string): Promise<string> => (await ipJson<Array<{ address: string }>>(ns, ['link', 'show', 'dev', dev]))[0]?.address ?? ''
  await ensure(ns, [{ name: br, addresses: ['10.31.2.1/24'], mtu: 1500 }])
  const before = await mac(br)
  // Two ports; the low one has a MAC below the bridge's, which an unpinned bridge would take, and give back when it leaves.
  for (const [port, address] of [['pa', '02:00:00:00:00:01'], ['pb', '02:00:00:00:00:09']] as const) {
    await run('ip', ['-n', ns, 'link', 'add', port, 'address', address, 'type', 'veth', 'peer', 'name', `${port}x`])
    await run('ip', ['-n', ns, 'link', 'set', port, 'master', br, 'up'])
  }
  t.equal(await mac(br), before, 'ports joining do not change it')
  await run('ip', ['-n', ns, 'link', 'del', 'pa'])
  t.equal(await mac(br), before, 'the lowest port leaving does not change it')

  // A bridge made by someone else (MAC following its ports) is pinned where it stands.
  const foreign = `pmbf${tag}`.slice(0, 15)
  await run('ip', ['-n', ns, 'link', 'add', foreign, 'type', 'bridge'])
  await run('ip', ['-n', ns, 'link', 'add', 'pc', 'address', '02:00:00:00:00:02', 'type', 'veth', 'peer', 'name', 'pcx'])
  await run('ip', ['-n', ns, 'link', 'add', 'pd', 'address', '02:00:00:00:00:08', 'type', 'veth', 'peer', 'name', 'pdx'])
  await run('ip', ['-n', ns, 'link', 'set', 'pc', 'master', foreign])
  await run('ip', ['-n', ns, 'link', 'set', 'pd', 'master', foreign])
  t.equal(await mac(foreign), '02:00:00:00:00:02', 'an unpinned bridge follows its lowest port')
  await ensure(ns, [{ name: foreign, addresses: ['10.31.3.1/24'], mtu: 1500 }])
  await run('ip', ['-n', ns, 'link', 'del', 'pc'])
  t.equal(await mac(foreign), '02:00:00:00:00:02', 'after ensureBridge it stays when that port leaves')
})

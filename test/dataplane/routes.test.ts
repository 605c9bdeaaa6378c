// The route reconciler against the real kernel, in a namespace of its own: podmesh lists, adds,
// replaces and deletes only routes tagged with its protocol; foreign routes — even to the same
// destination — are never listed, replaced or deleted. Also the forwarding sysctls (per netns).

import t from 'tap'
import { readFile } from 'node:fs/promises'
import type { Route } from '../../lib/mesh/types'
import { ROUTE_PROTOCOL } from '../../lib/dataplane/route-protocol'
import { Lab } from '../harness/netns'

const AGENT = 'test/dataplane/wireguard-agent.ts'

interface IpRoute { dst: string, dev?: string, protocol?: string, prefsrc?: string, gateway?: string, flags?: string[] }

const byDst = (a: { dst: string }, b: { dst: string }): number => a.dst.localeCompare(b.dst)

t.test('routes: podmesh touches only its own', async t => {
  const lab = new Lab({ t })
  const ns = await lab.netns('rt')
  const agent = ns.spawnTs(AGENT)
  const dev = lab.ifname('x')
  const peer = lab.ifname('y')
  await ns.ip(['link', 'add', dev, 'type', 'veth', 'peer', 'name', peer])
  for (const a of ['192.0.2.1/24', '10.88.0.1/24']) await ns.ip(['addr', 'add', a, 'dev', dev])
  await ns.ip(['addr', 'add', 'fd00:88::1/64', 'dev', dev, 'nodad'])
  await ns.ip(['link', 'set', dev, 'up'])
  await ns.ip(['link', 'set', peer, 'up'])

  // Foreign routes: different protocols, and one to a destination podmesh will want.
  await ns.ip(['route', 'add', '10.99.0.0/24', 'dev', dev])
  await ns.ip(['route', 'add', '10.99.1.0/24', 'dev', dev, 'proto', 'static'])
  await ns.ip(['route', 'add', '10.88.5.0/24', 'dev', dev, 'proto', 'static'])
  await ns.ip(['-6', 'route', 'add', 'fd00:99::/64', 'dev', dev, 'proto', 'static'])

  const foreign = async (): Promise<IpRoute[]> => {
    const all = [...await ns.ipJson<IpRoute[]>(['route', 'show']), ...await ns.ipJson<IpRoute[]>(['-6', 'route', 'show'])]
    return all.filter(r => r.protocol !== String(ROUTE_PROTOCOL)).sort(byDst)
  }
  const ours = async (): Promise<IpRoute[]> =>
    [...await ns.ipJson<IpRoute[]>(['route', 'show', 'proto', String(ROUTE_PROTOCOL)]),
      ...await ns.ipJson<IpRoute[]>(['-6', 'route', 'show', 'proto', String(ROUTE_PROTOCOL)])].sort(byDst)
  const observe = async (): Promise<Route[]> => (await agent.request<Route[]>('observeRoutes')).sort(byDst)
  const apply = async (add: Route[], del: Route[]): Promise<number> =>
    (await agent.request<{ spawns: number }>('applyRoutes', { add, del })).spawns

  const foreignBefore = await foreign()
  t.ok(foreignBefore.length >= 4, 'foreign routes in place')
  t.strictSame(await observe(), [], 'observe lists no foreign route')

  const r1: Route = { family: 4, dst: '10.88.1.0/24', dev, src: '10.88.0.1' }
  const r2: Route = { family: 4, dst: '10.88.2.0/24', dev, via: '192.0.2.9' }
  const r3: Route = { family: 6, dst: 'fd00:88:1::/64', dev, src: 'fd00:88::1' }
  // Deletes naming the foreign routes' destinations must not hit them (the protocol does not match).
  const spawns = await apply([r1, r2, r3], [
    { family: 4, dst: '10.99.0.0/24', dev },
    { family: 4, dst: '10.99.1.0/24', dev },
    { family: 6, dst: 'fd00:99::/64', dev }
  ])
  t.equal(spawns, 0, 'netlink only, no process')
  t.strictSame(await observe(), [r1, r2, r3].sort(byDst), 'observe returns exactly what was added')
  t.match(await ours(), [
    { dst: '10.88.1.0/24', dev, prefsrc: '10.88.0.1' },
    { dst: '10.88.2.0/24', dev, gateway: '192.0.2.9', flags: ['onlink'] },
    { dst: 'fd00:88:1::/64', dev, prefsrc: 'fd00:88::1' }
  ], 'the kernel holds them with podmesh\'s protocol, src and onlink next hop')
  t.strictSame(await foreign(), foreignBefore, 'foreign routes untouched')

  t.test('a foreign route to the same destination is a conflict, and stays', async t => {
    await t.rejects(agent.request('applyRoutes', { add: [{ family: 4, dst: '10.88.5.0/24', dev }], del: [] }),
      { name: 'AgentError', remote: { code: 'EROUTE', problem: 'conflict' } }, 'refused as a conflict')
    t.strictSame(await foreign(), foreignBefore, 'the foreign route keeps its protocol and device')
  })

  t.test('an own route to the same destination is replaced in place', async t => {
    const r1b: Route = { family: 4, dst: '10.88.1.0/24', dev }
    t.equal(await apply([r1b], []), 0)
    t.strictSame(await observe(), [r1b, r2, r3].sort(byDst), 'src dropped by replace, no duplicate')
    await apply([r1], [r1b])
    t.strictSame(await observe(), [r1, r2, r3].sort(byDst), 'delete-then-add also converges')
  })

  t.test('a route MTU (for a peer behind a narrower path) is set, read back and changed in place', async t => {
    const narrow: Route = { ...r2, mtu: 1340 }
    await apply([narrow], [r2])
    t.strictSame(await observe(), [r1, narrow, r3].sort(byDst), 'observed with its MTU')
    t.match(await ns.ip(['route', 'show', '10.88.2.0/24']), /mtu 1340/, 'the kernel holds the MTU metric')
    const narrower: Route = { ...r2, mtu: 1300 }
    // A delete of the old route and an add of the new one: the add replaces it, so at no
    // moment is there no route to the peer (a delete first would open a gap).
    await apply([narrower], [narrow])
    t.match(await ns.ip(['route', 'show', '10.88.2.0/24']), /mtu 1300/)
    t.equal((await ours()).filter(r => r.dst === '10.88.2.0/24').length, 1, 'one route, replaced')
    await apply([r2], [narrower])
    t.strictSame(await observe(), [r1, r2, r3].sort(byDst), 'the MTU is removed when the path is wide again')
    t.notMatch(await ns.ip(['route', 'show', '10.88.2.0/24']), /mtu/)
  })

  t.test('a route moving to another device with an onlink next hop (IPv6) is deleted, then added', async t => {
    // Mixed mode when a node changes location: WireGuard's route becomes VXLAN's via the peer's
    // tunnel address. The kernel refuses that as a replace (EINVAL); as delete + add it works.
    const other = lab.ifname('o')
    await ns.ip(['link', 'add', other, 'type', 'veth', 'peer', 'name', lab.ifname('p')])
    await ns.ip(['link', 'set', other, 'up'])
    const before: Route = { family: 6, dst: 'fd00:88:7::/64', dev, src: 'fd00:88::1' }
    const after: Route = { family: 6, dst: 'fd00:88:7::/64', dev: other, via: 'fd00:88:7::', src: 'fd00:88::1' }
    await apply([before], [])
    await apply([after], [before])
    t.strictSame((await observe()).filter(r => r.dst === 'fd00:88:7::/64'), [after], 'moved to the other device, via the next hop')
    await apply([], [after])
  })

  t.test('an unknown device is refused before anything changes', async t => {
    await t.rejects(agent.request('applyRoutes', { add: [r1, { family: 4, dst: '10.88.7.0/24', dev: 'nosuchdev0' }], del: [r2] }),
      { name: 'AgentError', remote: { problem: 'unknown-device' } }, 'refused: unknown device')
    t.strictSame(await observe(), [r1, r2, r3].sort(byDst), 'nothing deleted or added')
  })

  t.test('deleting removes only ours; deleting again is fine', async t => {
    await apply([], [r1, r2, r3])
    t.strictSame(await observe(), [])
    await t.resolves(apply([], [r1, r2, r3]), 'deleting routes already gone is not an error')
    t.strictSame(await observe(), [], 'and leaves nothing')
    t.strictSame(await foreign(), foreignBefore, 'the namespace is back to its foreign routes only')
  })

  t.test('deleting a route whose device is gone is not an error', async t => {
    const gone = lab.ifname('g')
    await ns.ip(['link', 'add', gone, 'type', 'veth', 'peer', 'name', lab.ifname('h')])
    await ns.ip(['link', 'set', gone, 'up'])
    const r: Route = { family: 4, dst: '10.88.9.0/24', dev: gone }
    await apply([r], [])
    t.strictSame(await observe(), [r])
    await ns.ip(['link', 'del', gone])
    t.strictSame(await observe(), [], 'the kernel removed it with its device')
    await apply([], [r])
    t.strictSame(await foreign(), foreignBefore, 'and the delete (matched by destination and protocol) hit nothing else')
  })
})

t.test('forwarding sysctls are per namespace and reported when changed', async t => {
  const lab = new Lab({ t })
  const ns = await lab.netns('fw')
  const agent = ns.spawnTs(AGENT)
  const hostBefore = await Promise.all(['ipv4/ip_forward', 'ipv6/conf/all/forwarding'].map(async k => await readFile(`/proc/sys/net/${k}`, 'utf8')))
  // A new namespace may inherit the host's values (net.core.devconf_inherit_init_net): start from off.
  await ns.exec('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=0', 'net.ipv6.conf.all.forwarding=0'])
  t.strictSame(await agent.request('forwarding', { ipv4: true, ipv6: false }), [
    { key: 'net.ipv4.ip_forward', from: '0', to: '1' }
  ], 'only the family asked for')
  t.strictSame(await agent.request('forwarding', { ipv4: true, ipv6: true }), [
    { key: 'net.ipv6.conf.all.forwarding', from: '0', to: '1' }
  ], 'what was already on is not reported')
  t.strictSame(await agent.request('forwarding', { ipv4: true, ipv6: true }), [], 'second call changes nothing')
  t.equal((await ns.exec('cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim(), '1')
  t.equal((await ns.exec('cat', ['/proc/sys/net/ipv6/conf/all/forwarding'])).stdout.trim(), '1')
  const hostAfter = await Promise.all(['ipv4/ip_forward', 'ipv6/conf/all/forwarding'].map(async k => await readFile(`/proc/sys/net/${k}`, 'utf8')))
  t.strictSame(hostAfter, hostBefore, 'the host\'s own settings are untouched')
})

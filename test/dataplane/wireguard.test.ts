// The WireGuard backend against the real thing: two namespaces on a bridge underlay
// (192.0.2.1/.2), userspace WireGuard devices (wireguard-go, forced, so this runs on any machine)
// made by ensureDevice + applyWireguard from hand-written plans, routes through applyRoutes, ping
// across, read back with observe. Whether 'auto' and 'kernel' mode get a kernel device depends on
// the kernel: kernelHasWireguard asks `ip`, and the tests expect the matching path. The
// in-namespace work runs in wireguard-agent.ts (netlink acts on the process's namespace).

import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { ObservedWireguard, Peer, Route, WireguardDevice, WireguardPlan } from '../../lib/mesh/types'
import type { Link } from '../../lib/dataplane/rtnl'
import type { WireguardApplyResult, DeviceKind } from '../../lib/dataplane/wireguard/device'
import { loadOrCreatePrivateKey, type NodeKey } from '../../lib/dataplane/keys'
import { socketPath } from '../../lib/dataplane/wireguard/wireguard-go'
import { isAgentError, Lab, sh, type Netns, type NsProcess } from '../harness/netns'
import { kernelHasWireguard } from '../harness/kernel-wireguard'

const AGENT = 'test/dataplane/wireguard-agent.ts'
const PORT = 51820

interface Counted<T> { value: T, spawns: number }

interface Node {
  ns: Netns
  agent: NsProcess
  ifname: string
  key: NodeKey
  underlayIp: string
  /** Tunnel addresses (the node's own address from its pod subnet). */
  tunnel4: string
  tunnel6: string
  subnet4: string
  subnet6: string
}

/** A random 32-byte value: WireGuard accepts any as a peer's public key. */
const fakeKey = (): string => randomBytes(32).toString('base64')

const peerOf = (n: Node): Peer => ({
  node: n.ns.name,
  publicKey: n.key.publicKey,
  endpoint: `${n.underlayIp}:${PORT}`,
  allowedIps: [n.subnet4, n.subnet6].sort(),
  persistentKeepalive: 0
})

const routesTo = (from: Node, to: Node): Route[] => [
  { family: 4, dst: to.subnet4, dev: from.ifname, src: from.tunnel4 },
  { family: 6, dst: to.subnet6, dev: from.ifname, src: from.tunnel6 }
]

const desiredOf = (n: Node, peers: Peer[]): WireguardDevice => ({
  ifname: n.ifname,
  publicKey: n.key.publicKey,
  listenPort: PORT,
  mtu: 1420,
  addresses: [`${n.tunnel4}/32`, `${n.tunnel6}/128`],
  peers
})

const createPlan = (n: Node, peers: Peer[]): WireguardPlan => ({
  ifname: n.ifname,
  create: true,
  configure: true,
  listenPort: PORT,
  setMtu: 1420,
  addAddresses: [`${n.tunnel4}/32`, `${n.tunnel6}/128`],
  delAddresses: [],
  upsertPeers: peers,
  removePeers: []
})

const peerPlan = (n: Node, upsertPeers: Peer[], removePeers: string[] = []): WireguardPlan => ({
  ifname: n.ifname, create: false, configure: false, listenPort: PORT, addAddresses: [], delAddresses: [], upsertPeers, removePeers
})

/** `wg show <if> latest-handshakes` as key → epoch seconds (the socket dir is global: no netns needed). */
async function handshakes (ifname: string): Promise<Map<string, number>> {
  const { stdout } = await sh('wg', ['show', ifname, 'latest-handshakes'])
  return new Map(stdout.trim().split('\n').filter(l => l !== '').map(l => {
    const [k = '', v = '0'] = l.split('\t')
    return [k, Number(v)]
  }))
}

/** Running, not a zombie (an exited daemon waits for init to reap it). */
const pidAlive = (pid: number): boolean => {
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) } catch { return false }
}

t.test('userspace WireGuard between two namespaces', async t => {
  const lab = new Lab({ t })
  const underlay = await lab.underlay()
  const stateDir = await mkdtemp(join(tmpdir(), 'podmesh-wg-'))
  t.teardown(async () => await rm(stateDir, { recursive: true, force: true }))

  const mkNode = async (i: number): Promise<Node> => {
    const ns = await lab.netns(`n${i}`)
    await underlay.attach(ns, `192.0.2.${i}/24`)
    return {
      ns,
      agent: ns.spawnTs(AGENT),
      ifname: lab.ifname('wg'),
      key: await loadOrCreatePrivateKey(join(stateDir, `n${i}`)),
      underlayIp: `192.0.2.${i}`,
      tunnel4: `10.77.${i}.0`,
      tunnel6: `fd00:77:${i}::`,
      subnet4: `10.77.${i}.0/24`,
      subnet6: `fd00:77:${i}::/64`
    }
  }
  const a = await mkNode(1)
  const b = await mkNode(2)

  await t.test('create, configure, route: ping across both families', async t => {
    for (const [n, other] of [[a, b], [b, a]] as const) {
      const r = await n.agent.request<Counted<WireguardApplyResult>>('apply', { plan: createPlan(n, [peerOf(other)]), privateKeyFile: n.key.privateKeyFile, mode: 'userspace' })
      t.strictSame(r.value, { kind: 'userspace', wgInvocations: 1 }, `${n.ifname}: created in userspace, one wg set`)
      t.equal(r.spawns, 2, 'spawned exactly wireguard-go and one wg')
      const rr = await n.agent.request<Counted<null>>('applyRoutes', { add: routesTo(n, other), del: [] })
      t.equal(rr.spawns, 0, 'routes go through netlink, no process')
    }
    t.ok(await a.ns.pings(b.tunnel4), 'a → b IPv4 through the tunnel')
    t.ok(await a.ns.pings(b.tunnel6), 'a → b IPv6 through the tunnel')
    t.ok(await b.ns.pings(a.tunnel4), 'b → a IPv4')
  })

  await t.test('observe returns what was applied', async t => {
    const o = await a.agent.request<Counted<ObservedWireguard>>('observe', { ifname: a.ifname })
    t.equal(o.spawns, 1, 'one process: wg show dump')
    const { peers, ...dev } = o.value
    t.strictSame(dev, { ifname: a.ifname, publicKey: a.key.publicKey, listenPort: PORT, mtu: 1420, addresses: [`${a.tunnel4}/32`, `${a.tunnel6}/128`].sort() },
      'device: key, port, MTU and addresses (the kernel\'s link-local address left out)')
    t.equal(peers.length, 1)
    const p = peers[0]
    t.match(p, { publicKey: b.key.publicKey, endpoint: `${b.underlayIp}:${PORT}`, allowedIps: [b.subnet4, b.subnet6].sort(), persistentKeepalive: 0 })
    t.ok((p?.lastHandshake ?? 0) > 0 && (p?.rxBytes ?? 0) > 0 && (p?.txBytes ?? 0) > 0, 'handshake and traffic counted')
    const routes = await a.agent.request<Route[]>('observeRoutes')
    t.strictSame(routes, routesTo(a, b), 'exactly the routes podmesh added')
  })

  await t.test('a resync with nothing changed spawns only the wg show read', async t => {
    const r = await a.agent.request<Counted<{ plan: WireguardPlan, result: WireguardApplyResult }>>('resync', { desired: desiredOf(a, [peerOf(b)]), privateKeyFile: a.key.privateKeyFile })
    t.strictSame(r.value.plan.upsertPeers, [], 'planner sees no peer change')
    t.equal(r.value.result.wgInvocations, 0, 'no wg set')
    t.equal(r.spawns, 1, 'one process in the whole observe → plan → apply')
    const again = await a.agent.request<Counted<WireguardApplyResult>>('apply', { plan: peerPlan(a, []), privateKeyFile: a.key.privateKeyFile })
    t.strictSame(again, { value: { wgInvocations: 0 }, spawns: 0 }, 'an empty plan spawns nothing')
  })

  await t.test('peers join, change and leave without resetting an unchanged peer', async t => {
    t.ok(await a.ns.pings(b.tunnel4, { count: 1 }))
    const before = await handshakes(a.ifname)
    const hsB = before.get(b.key.publicKey) ?? 0
    t.ok(hsB > 0, 'b has a handshake')
    const countersBefore = (await a.agent.request<Counted<ObservedWireguard>>('observe', { ifname: a.ifname })).value.peers[0]

    const c: Peer = { node: 'c', publicKey: fakeKey(), endpoint: '192.0.2.3:51820', allowedIps: ['10.77.3.0/24'], persistentKeepalive: 25 }
    const join1 = await a.agent.request<Counted<WireguardApplyResult>>('apply', { plan: peerPlan(a, [c]), privateKeyFile: a.key.privateKeyFile })
    t.strictSame(join1, { value: { wgInvocations: 1 }, spawns: 1 }, 'a joining peer costs one wg')

    // Change c in place: new endpoint (IPv6), allowed IPs replaced (not added to), keepalive off.
    const c2: Peer = { ...c, endpoint: '[2001:db8::3]:51821', allowedIps: ['10.77.4.0/24', 'fd00:77:4::/64'], persistentKeepalive: 0 }
    const d: Peer = { node: 'd', publicKey: fakeKey(), endpoint: '', allowedIps: [], persistentKeepalive: 0 }
    await a.agent.request('apply', { plan: peerPlan(a, [c2, d]), privateKeyFile: a.key.privateKeyFile })
    const mid = (await a.agent.request<Counted<ObservedWireguard>>('observe', { ifname: a.ifname })).value
    t.match(mid.peers.find(p => p.publicKey === c.publicKey), { endpoint: '[2001:db8::3]:51821', allowedIps: ['10.77.4.0/24', 'fd00:77:4::/64'], persistentKeepalive: 0 },
      'allowed-ips replaced, endpoint and keepalive updated in place')
    t.match(mid.peers.find(p => p.publicKey === d.publicKey), { endpoint: '', allowedIps: [] }, 'a peer with no endpoint and no allowed IPs')

    const leave = await a.agent.request<Counted<WireguardApplyResult>>('apply', { plan: peerPlan(a, [], [c.publicKey, d.publicKey]), privateKeyFile: a.key.privateKeyFile })
    t.strictSame(leave, { value: { wgInvocations: 1 }, spawns: 1 }, 'two peers leaving cost one wg')

    const after = await handshakes(a.ifname)
    t.strictSame([...after.keys()], [b.key.publicKey], 'only b is left')
    t.equal(after.get(b.key.publicKey), hsB, 'b\'s handshake is the same one: the session was never reset')
    const countersAfter = (await a.agent.request<Counted<ObservedWireguard>>('observe', { ifname: a.ifname })).value.peers[0]
    t.ok((countersAfter?.rxBytes ?? 0) >= (countersBefore?.rxBytes ?? Infinity), 'b\'s counters kept counting up')
    t.ok(await a.ns.pings(b.tunnel6, { count: 1 }), 'b still reachable')
  })

  await t.test('adopt: a new daemon process takes over the running device without a lost packet', async t => {
    const link = await a.agent.request<Link>('link', { ifname: a.ifname })
    const pids = await lab.wireguardGoPids()
    const [pidA] = (await Promise.all(pids.map(async pid => ({ pid, args: await sh('cat', [`/proc/${pid}/cmdline`]) }))))
      .filter(p => p.args.stdout.split('\0').includes(a.ifname)).map(p => p.pid)
    t.ok(pidA !== undefined && pidA > 0, 'wireguard-go runs for a')

    // A steady ping across the whole restart: 40 packets at 50/s.
    const ping = a.ns.exec('ping', ['-4', '-c', '40', '-i', '0.05', '-W', '1', b.tunnel4])

    // The process that created the device dies hard, its whole process group with it.
    await a.agent.kill()
    t.ok(pidA !== undefined && pidAlive(pidA), 'wireguard-go outlived the process that started it')

    a.agent = a.ns.spawnTs(AGENT)
    const adopt = await a.agent.request<Counted<DeviceKind>>('ensure', { ifname: a.ifname, mode: 'auto' })
    t.strictSame(adopt, { value: 'userspace', spawns: 0 }, 'adopted as userspace, nothing started')
    const link2 = await a.agent.request<Link>('link', { ifname: a.ifname })
    t.equal(link2.index, link.index, 'same link: not re-created')
    const resync = await a.agent.request<Counted<{ plan: WireguardPlan }>>('resync', { desired: desiredOf(a, [peerOf(b)]), privateKeyFile: a.key.privateKeyFile })
    t.match(resync.value.plan, { create: false, configure: false, upsertPeers: [], removePeers: [] }, 'the new process finds everything in place')

    const { stdout } = await ping
    t.match(stdout, / 0% packet loss/, 'no packet lost across the restart')
  })

  await t.test('deleteDevice removes the link and wireguard-go ends', async t => {
    const pidsBefore = await lab.wireguardGoPids()
    const r = await b.agent.request<Counted<null>>('deleteDevice', { ifname: b.ifname })
    t.equal(r.spawns, 0)
    t.equal(await b.agent.request('link', { ifname: b.ifname }), null, 'link gone')
    const pidsAfter = await lab.wireguardGoPids()
    t.equal(pidsAfter.length, pidsBefore.length - 1, 'b\'s wireguard-go is gone, a\'s still runs')
    t.equal(await b.agent.request('observe', { ifname: b.ifname }).then(o => (o as Counted<null>).value), null, 'observe: absent')
  })

  await t.test('wireguard-go ends by itself when its tun device is deleted by hand', async t => {
    const [pid] = await lab.wireguardGoPids()
    t.ok(pid !== undefined, 'a\'s wireguard-go runs')
    await a.ns.ip(['link', 'del', a.ifname])
    const until = Date.now() + 3000
    while (pid !== undefined && pidAlive(pid) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
    t.strictSame(await lab.wireguardGoPids(), [], 'no wireguard-go left, none killed')
    t.notOk(existsSync(socketPath(a.ifname)), 'its control socket is gone too')
  })
})

t.test('auto and kernel mode follow what the kernel offers', async t => {
  const lab = new Lab({ t })
  const kernel = await kernelHasWireguard(lab)
  t.comment(`this kernel ${kernel ? 'has' : 'has no'} WireGuard`)
  const agent = (await lab.netns('mode')).spawnTs(AGENT)
  const auto = lab.ifname('wa')
  const forced = lab.ifname('wk')

  if (kernel) {
    t.strictSame(await agent.request('ensure', { ifname: auto, mode: 'auto' }), { value: 'kernel', spawns: 0 }, 'auto: a kernel device, no wireguard-go')
    t.strictSame(await agent.request('ensure', { ifname: forced, mode: 'kernel' }), { value: 'kernel', spawns: 0 }, 'forced kernel mode works')
    t.match(await agent.request('link', { ifname: forced }), { kind: 'wireguard' })
    return
  }
  t.strictSame(await agent.request('ensure', { ifname: auto, mode: 'auto' }), { value: 'userspace', spawns: 1 }, 'auto falls back to wireguard-go')
  t.match(await agent.request('link', { ifname: auto }), { kind: 'tun' })
  const r = agent.request('ensure', { ifname: forced, mode: 'kernel' })
  await t.rejects(r, { code: 'EAGENT' })
  const e: unknown = await r.catch(e => e)
  t.ok(isAgentError(e) && e.remote.code === 'EWGDEVICE' && e.remote.problem === 'no-kernel-module', `forced kernel mode fails clearly: ${String(e)}`)
  t.equal(await agent.request('link', { ifname: forced }), null, 'and leaves no link behind')
})

t.test('a plan too large for one argv goes through wg addconf', async t => {
  const lab = new Lab({ t })
  const kernel = await kernelHasWireguard(lab)
  const ns = await lab.netns('big')
  const agent = ns.spawnTs(AGENT)
  const ifname = lab.ifname('wg')
  const key = await loadOrCreatePrivateKey(await mkdtemp(join(tmpdir(), 'podmesh-wgbig-')))
  t.teardown(async () => await rm(join(key.privateKeyFile, '..'), { recursive: true, force: true }))

  const N = 6000
  const peers: Peer[] = Array.from({ length: N }, (_, i) => ({
    node: `n${i}`,
    publicKey: fakeKey(),
    endpoint: `192.0.2.${1 + (i % 250)}:${20000 + i}`,
    allowedIps: [`10.${100 + Math.floor(i / 256)}.${i % 256}.0/24`],
    persistentKeepalive: 25
  }))
  const plan: WireguardPlan = { ifname, create: true, configure: true, listenPort: PORT, addAddresses: [], delAddresses: [], upsertPeers: peers, removePeers: [] }
  const r = await agent.request<Counted<WireguardApplyResult>>('apply', { plan, privateKeyFile: key.privateKeyFile })
  // Mode auto: the kernel's device where there is one, so wg's kernel path gets the big plan too.
  t.strictSame(r.value, { kind: kernel ? 'kernel' : 'userspace', wgInvocations: 2 }, 'wg set (key, port) + wg addconf (peers)')
  let o = (await agent.request<Counted<ObservedWireguard>>('observe', { ifname })).value
  t.equal(o.peers.length, N, 'all peers in place')
  t.equal(o.publicKey, key.publicKey)

  // Through addconf too: allowed IPs are replaced, and removals ride in a wg set.
  const moved = peers.slice(0, N - 10).map(p => ({ ...p, allowedIps: [p.allowedIps[0]?.replace(/^10\./, '11.') ?? ''] }))
  const gone = peers.slice(N - 10).map(p => p.publicKey)
  const r2 = await agent.request<Counted<WireguardApplyResult>>('apply', { plan: { ...plan, create: false, configure: false, upsertPeers: moved, removePeers: gone }, privateKeyFile: key.privateKeyFile })
  t.equal(r2.value.wgInvocations, 2, 'one wg set for removals, one wg addconf')
  o = (await agent.request<Counted<ObservedWireguard>>('observe', { ifname })).value
  t.equal(o.peers.length, N - 10)
  const byKey = new Map(o.peers.map(p => [p.publicKey, p]))
  t.ok(moved.every(p => byKey.get(p.publicKey)?.allowedIps.join() === p.allowedIps.join()), 'each peer holds only its new allowed IPs')
})

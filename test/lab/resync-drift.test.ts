// Drift that a quiet resync's shortcuts could hide is still repaired (issue #13, idle CPU). A
// resync with no etcd change reuses the previous desired state (lib/mesh/desired-memo.ts),
// re-parses only the `wg show dump` lines that changed (DumpReader in
// lib/dataplane/wireguard/conf.ts), and skips the diff when the read is the same to the planner
// as the last quiet one (lib/mesh/observed-equal.ts). So drift is made here only after several
// such resyncs have run (the caches are warm), and each kind is one that lives in a line or a
// field the shortcuts would otherwise skip: a peer's allowed IPs and endpoint altered by hand
// (the peer's line changes, its key does not), the device's MTU changed, a pod route deleted.
// Each must come back to exactly what it was, by the resync alone (nothing changes in etcd).
import t from 'tap'
import { Lab, nsExec, sleep, waitForValue, type LabNode } from './cluster'

t.test('resync repairs drift after quiet resyncs warmed its shortcuts', async t => {
  t.setTimeout(10 * 60_000)
  const lab = await Lab.create({ nodes: 2, backend: 'wireguard', dualStack: true, resyncInterval: '2s' })
  t.teardown(async () => { await lab.destroy() })
  const [a, b] = lab.nodes as [LabNode, LabNode]
  const bKey = (await nsExec(b.ns, ['wg', 'show', b.wgIf, 'public-key'])).trim()
  const peerLine = async (field: 'allowed-ips' | 'endpoints'): Promise<string> => {
    const out = await nsExec(a.ns, ['wg', 'show', a.wgIf, field])
    return out.split('\n').find(l => l.startsWith(bKey))?.split('\t')[1]?.trim() ?? ''
  }
  const mtu = async (): Promise<number> => (JSON.parse(await nsExec(a.ns, ['ip', '-j', 'link', 'show', a.wgIf])) as Array<{ mtu: number }>)[0]?.mtu ?? -1
  const routes = async (): Promise<string> => await nsExec(a.ns, ['ip', '-6', 'route', 'show', 'proto', '211'])
  // Every repair is bounded well beyond one resync (2 s) for a loaded machine; the value is what is asserted.
  const until = async <T>(what: string, read: () => Promise<T>, want: T): Promise<T> =>
    await waitForValue(what, 30_000, async () => { const v = await read(); return v === want ? v : undefined }).catch(async () => await read())

  const allowed = await peerLine('allowed-ips')
  const endpoint = await peerLine('endpoints')
  const deviceMtu = await mtu()
  const bRoute6 = (await routes()).split('\n').find(l => l.includes(a.wgIf)) ?? ''
  t.match(allowed, /\/24 .*\/64|\/64 .*\/24/, "b's peer on a carries both of b's pod subnets")
  t.match(endpoint, /^192\.0\.2\.\d+:\d+$/)
  t.match(bRoute6, /^fd/, "a has a podmesh IPv6 route to b's pod subnet")
  // Let quiet resyncs run: the desired state is memoised and the dump reader holds every line.
  await sleep(7000)

  await nsExec(a.ns, ['wg', 'set', a.wgIf, 'peer', bKey, 'allowed-ips', allowed.split(' ')[0] ?? ''])
  t.not(await peerLine('allowed-ips'), allowed, 'allowed IPs altered by hand (only one of the two left)')
  t.equal(await until('allowed IPs repaired', async () => await peerLine('allowed-ips'), allowed), allowed, 'allowed IPs repaired by the resync')

  await nsExec(a.ns, ['wg', 'set', a.wgIf, 'peer', bKey, 'endpoint', '192.0.2.250:51999'])
  t.equal(await peerLine('endpoints'), '192.0.2.250:51999', 'endpoint altered by hand')
  t.equal(await until('endpoint repaired', async () => await peerLine('endpoints'), endpoint), endpoint, 'endpoint repaired by the resync')

  await nsExec(a.ns, ['ip', 'link', 'set', a.wgIf, 'mtu', String(deviceMtu - 100)])
  t.equal(await mtu(), deviceMtu - 100, 'device MTU changed by hand')
  t.equal(await until('device MTU repaired', mtu, deviceMtu), deviceMtu, 'device MTU repaired by the resync')

  const dst = bRoute6.split(' ')[0] ?? ''
  await nsExec(a.ns, ['ip', '-6', 'route', 'del', dst, 'proto', '211'])
  t.notMatch(await routes(), dst, 'route deleted by hand')
  t.match(await until('route repaired', async () => (await routes()).includes(dst), true), true, 'route repaired by the resync')
  t.match(await routes(), dst)
})

// The path-MTU prober on a real kernel (site A of two sites joined by a 1400-byte router link):
// a peer on the node's own link is not probed and carries the link's MTU; a routed peer is
// probed when it appears (1400, v4 and v6); a resync check re-probes it when the kernel learned
// a narrower path from a router, and only then; a peer that moves is probed at its new address;
// one that leaves is forgotten (the revision the daemon memoises on moves then, not on a quiet
// check); one the node has no route to fails once, without a retry per resync.
import t from 'tap'
import type { PeerPath } from '../../lib/daemon/path-mtu-prober'
import { Lab } from '../harness/netns'
import { forgetPathMtu, twoSites } from '../harness/two-sites'

t.test('path-MTU prober', async t => {
  const lab = new Lab({ t })
  const { a, b, r1, r2, narrow } = await twoSites(lab)
  // A second host on site A's link: an on-link peer.
  const agent = a.spawnTs('test/daemon/path-mtu-prober-agent.ts', ['1500'])
  const known = async (): Promise<Record<string, PeerPath>> => await agent.request('known')
  const changes = async (): Promise<PeerPath[]> => await agent.request('changes')

  await agent.request('setPeers', { router: '192.0.2.254', far4: '198.51.100.11', far6: '2001:db8:b::11' })
  t.match(await known(), {
    router: { onLink: true, mtu: 1500 },
    far4: { onLink: false, mtu: 1400, blackHole: false },
    far6: { onLink: false, mtu: 1400 }
  }, 'on-link at the link MTU; routed peers found behind the 1400-byte link')
  t.equal((await changes()).length, 3, 'one change per peer that became known')

  const revision = async (): Promise<number> => await agent.request('revision')
  const before = await revision()
  await agent.request('check')
  t.same(await changes(), [], 'a resync check with nothing new learned probes nothing and changes nothing')
  await agent.request('setPeers', { router: '192.0.2.254', far4: '198.51.100.11', far6: '2001:db8:b::11' })
  t.equal(await revision(), before, 'nor does handing over the same peers: the revision (what the daemon memoises on) stays')

  // The WAN narrows to 1300. The kernel learns it when traffic with DF crosses (a ping here).
  await r1.ip(['link', 'set', narrow[0], 'mtu', '1300'])
  await r2.ip(['link', 'set', narrow[1], 'mtu', '1300'])
  await a.exec('ping', ['-4', '-M', 'do', '-c', '1', '-W', '1', '-s', '1372', '198.51.100.11']).catch(() => {})
  await agent.request('check')
  const c = await changes()
  t.match(c, [{ node: 'far4', mtu: 1300 }], 'the check saw the learned 1300 and re-probed that peer (the v6 one learned nothing yet)')
  t.match(await known(), { far4: { mtu: 1300 }, far6: { mtu: 1400 } })

  // A peer moves (a new address on site B) and another leaves.
  await b.ip(['addr', 'add', '198.51.100.12/24', 'dev', (await b.ipJson<Array<{ ifname: string, addr_info: Array<{ local: string }> }>>(['addr', 'show'])).find(l => l.addr_info.some(x => x.local === '198.51.100.11'))?.ifname ?? ''])
  await forgetPathMtu(a)
  await agent.request('setPeers', { far4: '198.51.100.12', far6: '2001:db8:b::11' })
  const k = await known()
  t.ok(await revision() > before, 'a moved and a gone peer move the revision')
  t.notOk('router' in k, 'a peer that left is forgotten')
  t.match(k, { far4: { ip: '198.51.100.12', mtu: 1300 } }, 'a moved peer is probed at its new address')

  // A peer the node has no route to: the failure is said once, and not retried on every resync.
  await a.ip(['-6', 'route', 'del', 'default'])
  await agent.request('setPeers', { far4: '198.51.100.12', far6: '2001:db8:b::11', lost: '2001:db8:99::1' })
  t.match(await agent.request('failures'), [/^lost: .*(unreachable|ENETUNREACH)/i], 'no route: one failure, naming the peer')
  await agent.request('check')
  await agent.request('check')
  t.same(await agent.request('failures'), [], 'the resync checks do not retry it before the interval')
  t.notOk('lost' in await known(), 'and its path MTU is not known')
})

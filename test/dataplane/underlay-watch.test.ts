// The underlay watch against the real kernel, in a namespace of its own: address and link
// changes reach it through rtnetlink multicast as debounced 'changed' events, the periodic check
// fires without any change, close() ends both; and findUnderlay re-evaluated after each change
// keeps the address in use while present, takes the same family's next one once it is gone,
// and waits (UnderlayError) while there is none.
import t from 'tap'
import { Lab, isAgentError, type NsProcess } from '../harness/netns'
import { sleep } from '../lab/cluster'

const AGENT = 'test/dataplane/underlay-agent.ts'

/** The events of one change: waits up to 2 s for the first, then collects stragglers for 300 ms. */
async function changesAfter (agent: NsProcess): Promise<string[]> {
  const deadline = Date.now() + 2000
  while (Date.now() < deadline) {
    const c = await agent.request<string[]>('changes')
    if (c.length > 0) {
      await sleep(300)
      return [...c, ...await agent.request<string[]>('changes')]
    }
    await sleep(20)
  }
  return []
}

t.test('address and link changes become debounced events; findUnderlay follows', async t => {
  const lab = new Lab({ t })
  const ns = await lab.netns('uw')
  const dev = lab.ifname('e')
  // A veth pair inside the namespace (no dummy module on every kernel); only `dev` matters.
  await ns.ip(['link', 'add', dev, 'type', 'veth', 'peer', 'name', lab.ifname('p')])
  await ns.ip(['addr', 'add', '192.0.2.10/24', 'dev', dev])
  await ns.ip(['addr', 'add', '2001:db8::10/64', 'dev', dev, 'nodad'])
  await ns.ip(['link', 'set', dev, 'up'])
  const agent = ns.spawnTs(AGENT)
  await agent.request('open', { debounceMs: 100, periodicMs: 3_600_000 })
  const find = async (keep?: string): Promise<string> =>
    (await agent.request<{ ip: string }>('find', { interface: dev, ...(keep !== undefined ? { keep } : {}) })).ip

  t.equal(await find(), '192.0.2.10', 'at start: the first global address, IPv4 first')

  await ns.ip(['addr', 'add', '192.0.2.20/24', 'dev', dev])
  t.ok((await changesAfter(agent)).includes('netlink'), 'an added address is noticed')
  t.equal(await find('192.0.2.10'), '192.0.2.10', 'the address in use stays although another appeared')
  t.equal(await find('192.0.2.20'), '192.0.2.20', 'whichever is in use stays, primary or not')

  await ns.exec('ip', ['-batch', '-'], { input: `addr del 192.0.2.20/24 dev ${dev}\naddr del 192.0.2.10/24 dev ${dev}\n` })
  t.ok((await changesAfter(agent)).includes('netlink'), 'removals are noticed')
  const gone = await find('192.0.2.10').then(() => undefined, (e: unknown) => e)
  t.ok(isAgentError(gone) && gone.remote.code === 'EUNDERLAY', 'old address gone, only IPv6 left: nothing to take (the caller keeps the old one and waits)')
  t.match((gone as Error).message, /no global IPv4 address \(192\.0\.2\.10 is gone\)/)

  await ns.ip(['addr', 'add', '192.0.2.110/24', 'dev', dev])
  t.ok((await changesAfter(agent)).includes('netlink'), 'the new address is noticed')
  t.equal(await find('192.0.2.10'), '192.0.2.110', 'the new address of the same family is taken')

  await ns.ip(['link', 'set', dev, 'down'])
  t.ok((await changesAfter(agent)).includes('netlink'), 'a link change is noticed')

  // A burst (one `ip -batch`, 20 changes) becomes far fewer events than changes.
  const burst = Array.from({ length: 10 }, (_, i) => `addr add 192.0.2.${200 + i}/24 dev ${dev}`)
  await ns.exec('ip', ['-batch', '-'], { input: [...burst, ...burst.map(l => l.replace('addr add', 'addr del'))].join('\n') + '\n' })
  const events = await changesAfter(agent)
  t.ok(events.length >= 1 && events.length <= 3, `a burst of 20 changes: ${events.length} event(s)`)

  await agent.request('close')
  await ns.ip(['addr', 'add', '192.0.2.120/24', 'dev', dev])
  await sleep(400)
  t.strictSame(await agent.request('changes'), [], 'nothing after close')
  await agent.stop()
  t.equal((await agent.exited).code, 0, 'the agent exits cleanly once asked to')
})

t.test('the periodic check fires without any change', async t => {
  const lab = new Lab({ t })
  const ns = await lab.netns('uw')
  const agent = ns.spawnTs(AGENT)
  await agent.request('open', { debounceMs: 10, periodicMs: 200 })
  t.ok((await changesAfter(agent)).includes('periodic'))
  await agent.request('close')
  await agent.stop()
})

// Table tests for the pure WireGuard text formats: parsing `wg show <if> dump` (at once, and
// again and again through a DumpReader that re-parses only changed lines) and rendering the
// `wg` invocations of a plan (including the split of plans too large for one argv).

import t from 'tap'
import type { Peer, WireguardPlan } from '../../lib/mesh/types'
import {
  ARGV_LIMIT, argvBytes, DumpReader, isWireguardDumpError, parseDump, renderAddconf, renderInvocations, renderSetArgs
} from '../../lib/dataplane/wireguard/conf'

const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const PUB = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
const K1 = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
const K2 = 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='
const K3 = 'gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA='

const dumpOf = (...lines: string[][]): string => lines.map(l => l.join('\t')).join('\n') + '\n'

t.test('parseDump', async t => {
  const cases: Array<{ name: string, text: string, want: unknown }> = [
    {
      name: 'fresh device: no key, no peers',
      text: dumpOf(['(none)', '(none)', '33954', 'off']),
      want: { publicKey: '', listenPort: 33954, peers: [] }
    },
    {
      name: 'IPv4 and IPv6 endpoints, allowed IPs canonicalised and sorted, keepalive off/n',
      text: dumpOf(
        [PRIV, PUB, '51820', 'off'],
        [K1, '(none)', '192.0.2.2:51820', '10.244.2.0/24,fd00:0:0:2:0:0:0:0/64', '1700000000', '1234', '5678', '25'],
        [K2, '(none)', '[2001:db8::3]:51821', 'fd00::3:0/112,10.244.3.0/24', '0', '0', '0', 'off']
      ),
      want: {
        publicKey: PUB,
        listenPort: 51820,
        peers: [
          { publicKey: K1, endpoint: '192.0.2.2:51820', allowedIps: ['10.244.2.0/24', 'fd00:0:0:2::/64'], persistentKeepalive: 25, lastHandshake: 1700000000, rxBytes: 1234, txBytes: 5678 },
          { publicKey: K2, endpoint: '[2001:db8::3]:51821', allowedIps: ['10.244.3.0/24', 'fd00::3:0/112'], persistentKeepalive: 0, lastHandshake: 0, rxBytes: 0, txBytes: 0 }
        ]
      }
    },
    {
      name: 'an endpoint learned by roaming, printed with a scope, is kept as text',
      text: dumpOf([PRIV, PUB, '51820', 'off'], [K1, '(none)', '[fe80::1%eth0]:51820', '10.244.2.0/24', '0', '0', '0', 'off']),
      want: { publicKey: PUB, listenPort: 51820, peers: [{ publicKey: K1, endpoint: '[fe80::1%eth0]:51820', allowedIps: ['10.244.2.0/24'], persistentKeepalive: 0, lastHandshake: 0, rxBytes: 0, txBytes: 0 }] }
    },
    {
      name: 'peer without endpoint and allowed IPs, fwmark set, trailing blank lines',
      text: dumpOf([PRIV, PUB, '51820', '0x1234'], [K3, '(none)', '(none)', '(none)', '0', '0', '0', 'off']) + '\n\n',
      want: { publicKey: PUB, listenPort: 51820, peers: [{ publicKey: K3, endpoint: '', allowedIps: [], persistentKeepalive: 0, lastHandshake: 0, rxBytes: 0, txBytes: 0 }] }
    }
  ]
  for (const c of cases) {
    t.test(c.name, async t => {
      const got = parseDump(c.text)
      t.strictSame(got, c.want)
      t.notMatch(JSON.stringify(got), PRIV, 'the private key is never returned')
    })
  }

  const bad: Array<{ name: string, text: string, line: number }> = [
    { name: 'empty', text: '', line: 1 },
    { name: 'short interface line', text: dumpOf([PRIV, PUB, '51820']), line: 1 },
    { name: 'port not a number', text: dumpOf([PRIV, PUB, 'x', 'off']), line: 1 },
    { name: 'short peer line', text: dumpOf([PRIV, PUB, '1', 'off'], [K1, '(none)', '(none)']), line: 2 },
    { name: 'bad allowed IP', text: dumpOf([PRIV, PUB, '1', 'off'], [K1, '(none)', '(none)', '10.0.0.1/24', '0', '0', '0', 'off']), line: 2 },
    { name: 'bad keepalive', text: dumpOf([PRIV, PUB, '1', 'off'], [K1, '(none)', '(none)', '(none)', '0', '0', '0', 'on']), line: 2 }
  ]
  for (const c of bad) {
    t.test(`rejects: ${c.name}`, async t => {
      const e = (() => { try { parseDump(c.text); return undefined } catch (e) { return e } })()
      t.ok(isWireguardDumpError(e), 'a WireguardDumpError')
      t.match(e, { code: 'EWGDUMP', line: c.line })
      t.notMatch(String((e as Error).message), PRIV, 'the message never quotes the private key')
    })
  }
})

t.test('DumpReader: every read equals parseDump of the same text, whatever changed since the last', async t => {
  const head = [PRIV, PUB, '51820', 'off']
  const p1 = [K1, '(none)', '192.0.2.2:51820', '10.244.2.0/24,fd00:0:0:2:0:0:0:0/64', '1700000000', '1234', '5678', '25']
  const p2 = [K2, '(none)', '192.0.2.3:51820', '10.244.3.0/24', '0', '0', '0', 'off']
  const p3 = [K3, '(none)', '(none)', '10.244.4.0/24', '0', '0', '0', 'off']
  const at = (line: string[], i: number, v: string): string[] => line.map((x, j) => j === i ? v : x)
  // Each step is read after the previous one by the same reader.
  const steps: Array<{ name: string, text: string }> = [
    { name: 'first read', text: dumpOf(head, p1, p2) },
    { name: 'nothing changed', text: dumpOf(head, p1, p2) },
    { name: 'only handshake and counters moved', text: dumpOf(head, at(at(at(p1, 4, '1700000120'), 5, '99999'), 6, '88888'), p2) },
    { name: "a peer's allowed IPs altered by hand", text: dumpOf(head, at(p1, 3, '10.244.2.0/24'), p2) },
    { name: 'and put back', text: dumpOf(head, p1, p2) },
    { name: 'an endpoint changed (roaming)', text: dumpOf(head, p1, at(p2, 2, '198.51.100.7:40000')) },
    { name: 'a keepalive changed', text: dumpOf(head, p1, at(p2, 7, '25')) },
    { name: 'a peer removed by hand', text: dumpOf(head, p2) },
    { name: 'a peer added, order changed', text: dumpOf(head, p3, p2, p1) },
    { name: 'the device re-keyed and its port moved', text: dumpOf([PRIV, K3, '51821', 'off'], p3, p2, p1) },
    { name: 'all peers gone', text: dumpOf(head) },
    { name: 'peers back after an empty read', text: dumpOf(head, p1, p2) }
  ]
  const reader = new DumpReader()
  for (const s of steps) {
    t.test(s.name, async t => {
      t.strictSame(reader.read(s.text), parseDump(s.text))
    })
  }

  t.test('an unchanged line or configuration is reused; a changed one is not', async t => {
    const r = new DumpReader()
    const first = r.read(dumpOf(head, p1, p2))
    const again = r.read(dumpOf(head, at(p1, 5, '4242'), at(p2, 3, '10.244.9.0/24')))
    t.equal(again.peers[0]?.allowedIps, first.peers[0]?.allowedIps, 'same configuration text: same (frozen) allowed-IPs array')
    t.equal(again.peers[0]?.rxBytes, 4242, 'counters are read from every line')
    t.not(again.peers[1]?.allowedIps, first.peers[1]?.allowedIps, 'changed allowed IPs are parsed afresh')
    t.strictSame(again.peers[1]?.allowedIps, ['10.244.9.0/24'])
    t.ok(Object.isFrozen(first.peers[0]?.allowedIps), 'shared arrays cannot be changed by one reader of them')
    const third = r.read(dumpOf(head, at(p1, 5, '4242'), at(p2, 3, '10.244.9.0/24')))
    t.equal(third.peers[0], again.peers[0], 'an identical line: the very same peer object')
    t.ok(Object.isFrozen(third.peers[0]), 'frozen, as successive observed states share it')
    const fourth = r.read(dumpOf(head, at(p1, 6, '1'), at(p2, 3, '10.244.9.0/24')))
    t.not(fourth.peers[0], third.peers[0], 'a moved counter: a new peer object…')
    t.equal(fourth.peers[0]?.allowedIps, first.peers[0]?.allowedIps, '…on the configuration parsed in the first read')
    t.equal(fourth.peers[0]?.txBytes, 1)
  })

  t.test('the same lines in another order (as wireguard-go lists them): the previous peer array, as it was', async t => {
    const r = new DumpReader()
    const first = r.read(dumpOf(head, p1, p2, p3))
    const shuffled = dumpOf(head, p3, p1, p2)
    const again = r.read(shuffled)
    t.equal(again.peers, first.peers, 'the very same array: nothing keyed on it is rebuilt')
    const byKey = (x: { publicKey: string }, y: { publicKey: string }): number => x.publicKey < y.publicKey ? -1 : 1
    t.strictSame([...again.peers].sort(byKey), [...parseDump(shuffled).peers].sort(byKey), 'the same peers as a fresh parse')
    const moved = r.read(dumpOf(head, p3, at(p1, 4, '1700000999'), p2))
    t.not(moved.peers, first.peers, 'one line differs: a new array…')
    t.strictSame(moved, parseDump(dumpOf(head, p3, at(p1, 4, '1700000999'), p2)), '…equal to a fresh parse, in the new order')
    const fewer = r.read(dumpOf(head, p3, p2))
    t.equal(fewer.peers.length, 2, 'a removed line is seen')
    const rekeyed = r.read(dumpOf([PRIV, K1, '51822', 'off'], p3, p2))
    t.equal(rekeyed.peers, fewer.peers, 'the peers unchanged…')
    t.match(rekeyed, { publicKey: K1, listenPort: 51822 }, '…but the interface line is read every time')
  })

  t.test('a malformed changed line is still rejected, with its line number', async t => {
    const r = new DumpReader()
    r.read(dumpOf(head, p1, p2))
    const e = (() => { try { r.read(dumpOf(head, p1, at(p2, 3, '10.244.3.1/24'))); return undefined } catch (e) { return e } })()
    t.match(e, { code: 'EWGDUMP', line: 3 })
  })
})

const peer = (publicKey: string, over: Partial<Peer> = {}): Peer => ({
  node: 'n', publicKey, endpoint: '192.0.2.2:51820', allowedIps: ['10.244.2.0/24'], persistentKeepalive: 25, ...over
})

const plan = (over: Partial<WireguardPlan> = {}): WireguardPlan => ({
  ifname: 'pm0', create: false, configure: false, listenPort: 51820, addAddresses: [], delAddresses: [], upsertPeers: [], removePeers: [], ...over
})

t.test('renderSetArgs', async t => {
  const cases: Array<{ name: string, plan: WireguardPlan, want: string[] }> = [
    {
      name: 'configure: key file and port before any peer',
      plan: plan({ configure: true, upsertPeers: [peer(K1)] }),
      want: ['set', 'pm0', 'private-key', '/state/wireguard.key', 'listen-port', '51820',
        'peer', K1, 'endpoint', '192.0.2.2:51820', 'persistent-keepalive', '25', 'allowed-ips', '10.244.2.0/24']
    },
    {
      name: 'removals first, then upserts; IPv6 endpoint; several allowed IPs joined',
      plan: plan({ removePeers: [K3], upsertPeers: [peer(K1, { endpoint: '[2001:db8::2]:51820', allowedIps: ['10.244.2.0/24', 'fd00:0:0:2::/64'] })] }),
      want: ['set', 'pm0', 'peer', K3, 'remove',
        'peer', K1, 'endpoint', '[2001:db8::2]:51820', 'persistent-keepalive', '25', 'allowed-ips', '10.244.2.0/24,fd00:0:0:2::/64']
    },
    {
      name: 'no endpoint: left out (wg cannot clear one); no allowed IPs: empty string clears them; keepalive 0 is off',
      plan: plan({ upsertPeers: [peer(K2, { endpoint: '', allowedIps: [], persistentKeepalive: 0 })] }),
      want: ['set', 'pm0', 'peer', K2, 'persistent-keepalive', 'off', 'allowed-ips', '']
    },
    {
      name: 'configure only',
      plan: plan({ configure: true, listenPort: 51999 }),
      want: ['set', 'pm0', 'private-key', '/state/wireguard.key', 'listen-port', '51999']
    }
  ]
  for (const c of cases) {
    t.test(c.name, async t => { t.strictSame(renderSetArgs('pm0', c.plan, '/state/wireguard.key'), c.want) })
  }
})

t.test('renderAddconf', async t => {
  t.equal(renderAddconf([peer(K1, { allowedIps: ['10.244.2.0/24', 'fd00::/64'] }), peer(K2, { endpoint: '', allowedIps: [], persistentKeepalive: 0 })]), [
    '[Peer]', `PublicKey = ${K1}`, 'Endpoint = 192.0.2.2:51820', 'PersistentKeepalive = 25', 'AllowedIPs = 10.244.2.0/24, fd00::/64',
    '',
    '[Peer]', `PublicKey = ${K2}`, 'PersistentKeepalive = off',
    ''
  ].join('\n'), 'a peer without allowed IPs has no AllowedIPs line (an empty one is a syntax error; the section clears them anyway)')
})

t.test('renderInvocations', async t => {
  t.strictSame(renderInvocations('pm0', plan({ setMtu: 1400, addAddresses: ['10.0.0.0/32'] }), '/k'), [], 'no key, port or peer change: no wg at all')
  t.strictSame(renderInvocations('pm0', plan({ removePeers: [K1] }), '/k'), [{ args: ['set', 'pm0', 'peer', K1, 'remove'] }], 'small plan: one wg set')

  // Thousands of peers: just over the limit with one argv → the addconf form.
  const many = Array.from({ length: 6000 }, (_, i) => peer(Buffer.alloc(32, i % 256).toString('base64'), { allowedIps: [`10.${i >> 8}.${i & 255}.0/24`] }))
  t.ok(argvBytes(renderSetArgs('pm0', plan({ upsertPeers: many }), '/k')) > ARGV_LIMIT, 'the fixture is over the limit')
  const big = renderInvocations('pm0', plan({ configure: true, upsertPeers: many, removePeers: [K3] }), '/k')
  t.equal(big.length, 2, 'two processes: wg set for key, port and removals, wg addconf for upserts')
  t.strictSame(big[0], { args: ['set', 'pm0', 'private-key', '/k', 'listen-port', '51820', 'peer', K3, 'remove'] })
  t.strictSame(big[1]?.args, ['addconf', 'pm0'])
  t.equal(big[1]?.config, renderAddconf(many))
  t.notOk(big[1]?.config?.includes('/k'), 'the key file stays out of the config')

  const upsertsOnly = renderInvocations('pm0', plan({ upsertPeers: many }), '/k')
  t.equal(upsertsOnly.length, 1, 'upserts alone: only wg addconf')
  t.strictSame(upsertsOnly[0]?.args, ['addconf', 'pm0'])

  // One peer with an allowed-ips list longer than the kernel's per-argument limit.
  const wide = peer(K1, { allowedIps: Array.from({ length: 12000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`) })
  t.strictSame(renderInvocations('pm0', plan({ upsertPeers: [wide] }), '/k').map(i => i.args), [['addconf', 'pm0']], 'an argument over 128 KiB also takes the addconf form')

  // Tens of thousands leaving at once: removals split over several wg set, each under the limit.
  const leaving = Array.from({ length: 30000 }, (_, i) => Buffer.alloc(32, i % 256).toString('base64') + String(i))
  const sets = renderInvocations('pm0', plan({ removePeers: leaving, upsertPeers: many }), '/k')
  const setArgs = sets.filter(s => s.args[0] === 'set')
  t.ok(setArgs.length >= 2, 'split into several wg set')
  t.ok(setArgs.every(s => argvBytes(s.args) <= ARGV_LIMIT), 'each under the limit')
  t.equal(setArgs.flatMap(s => s.args).filter(a => a === 'remove').length, leaving.length, 'every removal kept')
  t.equal(sets[sets.length - 1]?.args[0], 'addconf', 'upserts last')
})

// route-dump's byte parser against messages the netlink package formats (the same bytes the
// kernel sends): every field a KernelRoute holds, the protocol and table filters, and a cut
// message refused. The kernel round trip is in routes.test.ts (Rtnl.routes on a real netns).
import t from 'tap'
import { formatRouteMessage } from 'netlink/dist/rt/structs'
import { AttrStream } from 'netlink/dist/structs'
import { ipText, parseRouteMessage, RouteDumpReader, type KernelRoute } from '../../lib/dataplane/route-dump'
import { formatIp, parseIp } from '../../lib/ipam/cidr'

const ip = (...b: number[]): Buffer => Buffer.from(b)
const v6 = (text: string): Buffer => {
  let a = parseIp(text).addr
  const b = Buffer.alloc(16)
  for (let i = 15; i >= 0; i--) { b[i] = Number(a & 0xffn); a >>= 8n }
  return b
}
const mtuMetric = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b }

function bytes (data: Record<string, unknown>, attrs: Record<string, unknown>): Buffer {
  const out = new AttrStream()
  formatRouteMessage({ kind: 'route', data, attrs } as never, out)
  return Buffer.concat(out.bufs)
}

const cases: Array<{ name: string, msg: Buffer, want: KernelRoute | undefined }> = [
  {
    name: 'IPv4 via a link, with its source and an MTU metric',
    msg: bytes({ family: 2, dstLen: 24, table: 254, protocol: 211, scope: 0, type: 1 },
      { table: 254, dst: ip(10, 88, 1, 0), oif: 7, prefsrc: ip(10, 88, 0, 1), metrics: { mtu: mtuMetric(1380) } }),
    want: { family: 4, dst: '10.88.1.0/24', oif: 7, src: '10.88.0.1', onlink: false, protocol: 211, table: 254, mtu: 1380 }
  },
  {
    name: 'IPv4 onlink through a gateway (VXLAN)',
    msg: bytes({ family: 2, dstLen: 24, table: 254, protocol: 211, type: 1, flags: { __unknown: 4 } },
      { table: 254, dst: ip(10, 88, 2, 0), oif: 9, gateway: ip(10, 88, 2, 0) }),
    want: { family: 4, dst: '10.88.2.0/24', oif: 9, via: '10.88.2.0', onlink: true, protocol: 211, table: 254 }
  },
  {
    name: 'IPv6, canonical text',
    msg: bytes({ family: 10, dstLen: 64, table: 254, protocol: 211, type: 1 },
      { table: 254, dst: v6('fd00:88:1::'), oif: 7 }),
    want: { family: 6, dst: 'fd00:88:1::/64', oif: 7, onlink: false, protocol: 211, table: 254 }
  },
  {
    name: 'a default route (no RTA_DST)',
    msg: bytes({ family: 2, dstLen: 0, table: 254, protocol: 211, type: 1 }, { table: 254, oif: 3 }),
    want: { family: 4, dst: '0.0.0.0/0', oif: 3, onlink: false, protocol: 211, table: 254 }
  },
  {
    name: 'the table only in the header (no RTA_TABLE)',
    msg: bytes({ family: 2, dstLen: 32, table: 254, protocol: 211, type: 1 }, { dst: ip(192, 0, 2, 7), oif: 2 }),
    want: { family: 4, dst: '192.0.2.7/32', oif: 2, onlink: false, protocol: 211, table: 254 }
  },
  {
    name: 'another protocol is skipped',
    msg: bytes({ family: 2, dstLen: 24, table: 254, protocol: 4, type: 1 }, { table: 254, dst: ip(10, 88, 1, 0), oif: 7 }),
    want: undefined
  },
  {
    name: 'another table is skipped (RTA_TABLE beyond the header byte)',
    msg: bytes({ family: 2, dstLen: 24, table: 252, protocol: 211, type: 1 }, { table: 1000, dst: ip(10, 88, 1, 0), oif: 7 }),
    want: undefined
  },
  {
    name: 'the local table is skipped',
    msg: bytes({ family: 2, dstLen: 32, table: 255, protocol: 211, type: 2 }, { table: 255, dst: ip(10, 88, 0, 1), oif: 7 }),
    want: undefined
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    t.strictSame(parseRouteMessage(c.msg, 211, 254), c.want)
  })
}

t.test('a cut message is an error naming the cut, not a partial route', async t => {
  const whole = cases[0]!.msg
  t.throws(() => parseRouteMessage(whole.subarray(0, whole.length - 2), 211, 254), /route attribute at byte \d+ claims \d+ bytes/)
  t.throws(() => parseRouteMessage(whole.subarray(0, 8), 211, 254), /shorter than struct rtmsg/)
})

t.test('IPv6 text read from the bytes is what formatIp writes (RFC 5952), for every shape of zero run', async t => {
  const texts = ['::', '::1', '1::', 'fd00:10:244:6b::3', '2001:db8::1:0:0:1', '2001:db8:0:0:1::1', '2001:0:0:1:0:0:0:1',
    '1:0:2:0:3:0:4:0', 'fd00:abcd:ef01:2345:6789:abcd:ef01:2345', '0:1::', '::ffff:c000:201', 'fe80::1:0:0:0']
  for (const text of texts) t.equal(ipText(v6(text)), formatIp(6, parseIp(text).addr), text)
  // Every hextet zero or not: 256 patterns.
  for (let mask = 0; mask < 256; mask++) {
    const b = Buffer.alloc(16)
    for (let h = 0; h < 8; h++) if ((mask & (1 << h)) !== 0) b.writeUInt16BE(0x0a00 + h, h * 2)
    let a = 0n
    for (const x of b) a = (a << 8n) | BigInt(x)
    if (ipText(b) !== formatIp(6, a)) t.fail(`mask ${mask}: ${ipText(b)} != ${formatIp(6, a)}`)
  }
  t.equal(ipText(ip(192, 0, 2, 7)), '192.0.2.7')
})

/** One datagram of a dump reply: each payload framed as an RTM_NEWROUTE message (type 24). */
function datagram (...payloads: Buffer[]): Buffer {
  return Buffer.concat(payloads.map(p => {
    const len = 16 + p.length
    const h = Buffer.alloc(16)
    h.writeUInt32LE(len, 0); h.writeUInt16LE(24, 4); h.writeUInt16LE(2, 6); h.writeUInt32LE(7, 8)
    return Buffer.concat([h, p, Buffer.alloc(((len + 3) & ~3) - len)])
  }))
}
const done = (): Buffer => { const h = Buffer.alloc(20); h.writeUInt32LE(20, 0); h.writeUInt16LE(3, 4); h.writeUInt32LE(7, 8); return h }

t.test('a reader reuses the routes of unchanged messages and parses changed ones afresh', async t => {
  const reader = new RouteDumpReader(211, 254)
  const msgs = cases.map(c => c.msg)
  const want = cases.flatMap(c => c.want === undefined ? [] : [c.want])
  const first = reader.read([datagram(...msgs.slice(0, 3)), Buffer.concat([datagram(...msgs.slice(3)), done()])])
  t.strictSame(first, want, 'the same routes as the parser gives, across datagrams, DONE skipped')
  t.ok(first.every(r => Object.isFrozen(r)), 'shared routes are frozen')
  // The same bytes cut into other datagrams, in new buffers.
  const again = reader.read([datagram(msgs[0]!), datagram(...msgs.slice(1)), done()])
  t.equal(again, first, 'an equal dump: the previous array itself')
  // The first message's MTU changes: that route is new, the rest are the previous read's.
  const changed = bytes({ family: 2, dstLen: 24, table: 254, protocol: 211, scope: 0, type: 1 },
    { table: 254, dst: ip(10, 88, 1, 0), oif: 7, prefsrc: ip(10, 88, 0, 1), metrics: { mtu: mtuMetric(1400) } })
  const third = reader.read([datagram(changed, ...msgs.slice(1))])
  t.not(third, first, 'a changed dump: a new array')
  t.equal(third[0]?.mtu, 1400, 'a changed message is read afresh')
  t.not(third[0], first[0])
  t.ok(third.slice(1).every((r, i) => r === first[i + 1]), 'the unchanged ones are shared')
  // A route removed shifts the rest: they parse afresh, and are still right.
  const fourth = reader.read([datagram(...msgs.slice(1))])
  t.strictSame(fourth, first.slice(1), 'after a removal the routes are still right')
  t.strictSame(reader.read([datagram(...msgs)]), want, 'and after it is back')
  t.strictSame(reader.read([done()]), [], 'an empty dump: no routes')
  t.throws(() => reader.read([datagram(msgs[0]!.subarray(0, 8))]), /shorter than struct rtmsg/, 'a cut route message is an error')
  const cut = datagram(msgs[0]!)
  t.throws(() => reader.read([cut.subarray(0, cut.length - 8)]), /netlink message at byte 0 claims \d+ bytes/, 'so is a cut datagram')
})

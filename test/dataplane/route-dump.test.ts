// route-dump's byte parser against messages the netlink package formats (the same bytes the
// kernel sends): every field a KernelRoute holds, the protocol and table filters, and a cut
// message refused. The kernel round trip is in routes.test.ts (Rtnl.routes on a real netns).
import t from 'tap'
import { formatRouteMessage } from 'netlink/dist/rt/structs'
import { AttrStream } from 'netlink/dist/structs'
import { parseRouteMessage, type KernelRoute } from '../../lib/dataplane/route-dump'
import { parseIp } from '../../lib/ipam/cidr'

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

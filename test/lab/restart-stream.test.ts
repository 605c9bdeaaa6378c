// How the restart labs read a ping stream (restart-stream.ts): losses are the gaps before the
// last reply, the requests after it are in flight, the timestamps are ping's own — and output
// that says nothing (no summary, no reply) is an error, never "nothing lost".
import t from 'tap'
import { parsePing } from './restart-stream'

const reply = (s: number, seq: number): string => `[${s.toFixed(6)}] 64 bytes from 10.244.1.2: icmp_seq=${seq} ttl=62 time=0.090 ms`
const summary = (sent: number, received: number): string =>
  `\n--- 10.244.1.2 ping statistics ---\n${sent} packets transmitted, ${received} received, ${Math.round(100 * (sent - received) / sent)}% packet loss, time 100ms\n`

t.test('gaps before the last reply are losses; requests after it are in flight', async t => {
  const out = ['PING 10.244.1.2 (10.244.1.2) 56(84) bytes of data.', reply(1000.5, 1), reply(1000.52, 2), reply(1000.58, 5), reply(1000.6, 6)].join('\n') + summary(8, 4)
  t.strictSame(parsePing(out, 'sample'), { sent: 8, received: 4, lost: [3, 4], inFlight: 2, firstReplyMs: 1000500, lastReplyMs: 1000600 })
})

t.test('an IPv6 stream reads the same', async t => {
  const out = [reply(7, 1).replace('10.244.1.2', 'fd00:10:244:1::2'), reply(7.02, 2).replace('10.244.1.2', 'fd00:10:244:1::2')].join('\n') + summary(2, 2)
  t.match(parsePing(out, 'v6'), { sent: 2, received: 2, lost: [], inFlight: 0, firstReplyMs: 7000, lastReplyMs: 7020 })
})

t.test('output without a summary or without a reply is an error, not an empty loss list', async t => {
  t.throws(() => parsePing('ping: connect: Network is unreachable\n', 'no route'), /no route: output not understood/)
  t.throws(() => parsePing(`PING 10.244.1.2\n${summary(5, 0)}`, 'all lost'), /all lost: no reply at all/)
})

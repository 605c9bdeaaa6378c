// A lost netlink reply fails its request (RtnlError, errno ETIMEDOUT) instead of hanging the
// pass that made it, and a socket error reaches the caller instead of crashing the process.
// The socket is a real rtnetlink socket made deaf: its replies are dropped before the netlink
// package sees them, exactly what a lost reply looks like. Only dumps (reads) are sent, because
// a deaf socket's writes would still reach this host's kernel.

import t from 'tap'
import { createRtNetlink, RawNetlinkSocket } from 'netlink'
import { Rtnl, isRtnlError } from '../../lib/dataplane/rtnl'

/** Rejects when `p` has not settled within `ms`: the generous deadline that tells "hangs" apart. */
async function within<T> (ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms) })
  try { return await Promise.race([p, late]) } finally { clearTimeout(timer) }
}

function deafSocket (): ReturnType<typeof createRtNetlink> {
  const sock = createRtNetlink()
  sock.socket.socket.removeAllListeners('message')
  return sock
}

/** The raw socket route dumps go through, made deaf the same way: it hears nothing. */
function deafRawSocket (): RawNetlinkSocket {
  const raw = new RawNetlinkSocket(0)
  raw.emit = () => true
  return raw
}

t.test('a request whose reply never comes fails with ETIMEDOUT', async t => {
  const rtnl = Rtnl.open({ timeoutMs: 200 }, deafSocket())
  t.teardown(() => rtnl.close())
  const err = await within(5_000, rtnl.links()).then(() => undefined, (e: unknown) => e)
  t.ok(isRtnlError(err), 'an RtnlError')
  if (!isRtnlError(err)) return
  t.equal(err.errno, 'ETIMEDOUT')
  t.equal(err.op, 'list links')
})

t.test('a timed-out dump frees the queue: the requests behind it fail in turn, not hang', async t => {
  const rtnl = Rtnl.open({ timeoutMs: 200, routeDumpSocket: deafRawSocket() }, deafSocket())
  t.teardown(() => rtnl.close())
  const results = await within(5_000, Promise.allSettled([rtnl.links(), rtnl.addresses(), rtnl.routes(99)]))
  t.strictSame(results.map(r => r.status === 'rejected' && isRtnlError(r.reason) ? r.reason.errno : r.status), ['ETIMEDOUT', 'ETIMEDOUT', 'ETIMEDOUT'])
})

t.test('a socket error goes to onError; the process survives', async t => {
  const seen: Error[] = []
  const sock = createRtNetlink()
  const rtnl = Rtnl.open({ onError: e => seen.push(e) }, sock)
  t.teardown(() => rtnl.close())
  sock.socket.emit('error', Object.assign(new Error('recv: ENOBUFS'), { code: 'ENOBUFS', errno: -105, syscall: 'recv' }))
  t.equal(seen.length, 1)
  t.match(await rtnl.links(), [{ name: 'lo' }], 'the socket still answers')
})

// The daemon's logger keeps secrets out of every line, however deep they sit: real pino,
// its output read back.

import t from 'tap'
import { Writable } from 'node:stream'
import { createLogger, redactSecrets } from '../../lib/daemon/logger'

function capture (): { stream: Writable, lines: () => string } {
  let text = ''
  const stream = new Writable({ write (chunk, _enc, cb) { text += String(chunk); cb() } })
  return { stream, lines: () => text }
}

t.test('secrets are redacted at any depth; the rest is logged', async t => {
  const out = capture()
  const log = createLogger({ level: 'info', nodeName: 'n1' }, out.stream)
  log.info({ etcdPassword: 'hunter2-top' }, 'top level')
  log.info({ options: { etcd: { password: 'hunter2-nested', username: 'podmesh' } } }, 'two levels down')
  log.info({ peers: [{ wg: { privateKey: 'hunter2-in-array', presharedKey: 'hunter2-psk' } }] }, 'in an array')
  log.info({ err: new Error('boom'), context: { client: { auth: { token: 'hunter2-token' } } } }, 'beside an error')
  const text = out.lines()
  t.notMatch(text, /hunter2/, 'no secret value in any line')
  t.match(text, /"username":"podmesh"/, 'other fields stay')
  t.match(text, /"password":"\[redacted\]"/)
  t.match(text, /"message":"boom"/, 'errors still serialize')
  t.equal(text.trim().split('\n').length, 4)
})

t.test('redactSecrets leaves its input alone and bounds depth', async t => {
  const input = { a: { password: 'x' } }
  t.strictSame(redactSecrets(input), { a: { password: '[redacted]' } })
  t.equal(input.a.password, 'x', 'the input is not mutated')
  let deep: Record<string, unknown> = { password: 'x' }
  for (let i = 0; i < 20; i++) deep = { d: deep }
  t.notMatch(JSON.stringify(redactSecrets(deep)), /"x"/)
})

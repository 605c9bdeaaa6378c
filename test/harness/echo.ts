// Echo servers and clients for service tests, in network namespaces (by name): a server answers
// a TCP connection or a UDP datagram with "<name> <source address it saw>", so a test sees which
// endpoint answered and whether the client's address was kept; on port + 1 it keeps a TCP
// connection open and answers each line with "<name> <line>" (held connections).
import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { sh } from './netns'

const SERVER = `
const net = require('net'), dgram = require('dgram')
const [name, port] = [process.argv[1], Number(process.argv[2])]
let ready = 0
const up = () => { if (++ready === 4) console.log('ready') }
net.createServer(s => s.end(name + ' ' + s.remoteAddress.replace(/^::ffff:/, '') + '\\n')).listen({ port, host: '::', ipv6Only: false }, up)
// port + 1: a connection that stays, answering each line with the server's name and the line.
net.createServer(s => { s.setEncoding('utf8'); s.on('data', d => s.write(name + ' ' + d)); s.on('error', () => {}) }).listen({ port: port + 1, host: '::', ipv6Only: false }, up)
for (const type of ['udp4', 'udp6']) {
  const u = dgram.createSocket({ type, ipv6Only: type === 'udp6' })
  u.on('message', (m, r) => u.send(name + ' ' + r.address, r.port, r.address))
  u.bind(port, type === 'udp4' ? '0.0.0.0' : '::', up)
}`

// Makes COUNT requests one after the other (a new socket, so a new flow, each); prints the answers as JSON.
const CLIENT = `
const net = require('net'), dgram = require('dgram')
const [proto, host, port, count, timeoutMs] = [process.argv[1], process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])]
const tcp = () => new Promise(res => {
  const s = net.connect({ host, port }); let d = ''
  const t = setTimeout(() => { s.destroy(); res('ERR:timeout') }, timeoutMs)
  s.on('data', b => { d += b }); s.on('end', () => { clearTimeout(t); res(d.trim()) })
  s.on('error', e => { clearTimeout(t); res('ERR:' + e.code) })
})
const udp = () => new Promise(res => {
  const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4')
  const t = setTimeout(() => { u.close(); res('ERR:timeout') }, timeoutMs)
  u.on('message', m => { clearTimeout(t); u.close(); res(m.toString()) })
  u.on('error', e => { clearTimeout(t); u.close(); res('ERR:' + e.code) })
  u.connect(port, host, () => u.send('hi'))
})
;(async () => { const out = []; for (let i = 0; i < count; i++) out.push(await (proto === 'udp' ? udp() : tcp())); console.log(JSON.stringify(out)) })()`

export interface Answer { name: string, source: string }

/** COUNT requests from namespace `ns`, each a new flow; an answer, or "ERR:<code>" (ERR:timeout after `timeoutMs`, default 5 s). */
export async function requests (ns: string, proto: 'tcp' | 'udp', host: string, port: number, count: number, o: { timeoutMs?: number } = {}): Promise<Array<Answer | string>> {
  const timeoutMs = o.timeoutMs ?? 5000
  const out = await sh('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, proto, host, String(port), String(count), String(timeoutMs)], { timeoutMs: 10_000 + count * (timeoutMs + 1000) })
  return (JSON.parse(out.stdout) as string[]).map(a => {
    if (a.startsWith('ERR:')) return a
    const [name = '', source = ''] = a.split(' ')
    return { name, source }
  })
}

/** Starts the echo server in namespace `ns` on TCP and UDP `port`; resolves when it listens. Killed (by its process group) in teardown. */
export async function startEchoServer (t: Test, ns: string, name: string, port: number): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER, name, String(port)], { stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  t.teardown(() => { try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL') } catch {} })
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.once('line', () => resolve())
    child.once('exit', code => reject(new Error(`echo server in ${ns} exited (${code})`)))
  })
  return child
}

/** The endpoints that answered (errors as themselves), sorted. */
export const answerNames = (as: Array<Answer | string>): string[] => [...new Set(as.map(a => (typeof a === 'string' ? a : a.name)))].sort()
/** The source addresses endpoint `name` saw, sorted. */
export const answerSources = (as: Array<Answer | string>, name: string): string[] =>
  [...new Set(as.flatMap(a => (typeof a !== 'string' && a.name === name ? [a.source] : [])))].sort()

// Connects once and keeps the connection: each line on stdin is sent, each answer printed.
const HOLD = `
const net = require('net'), rl = require('readline')
const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]) })
s.setEncoding('utf8')
s.on('data', d => process.stdout.write(d))
s.on('error', e => { console.log('ERR:' + e.code); process.exit(1) })
s.on('close', () => { console.log('ERR:closed'); process.exit(1) })
rl.createInterface({ input: process.stdin }).on('line', l => s.write(l + '\\n'))`

export interface HeldConnection {
  /** Sends a line; resolves with the answer ("<endpoint> <line>") or "ERR:<why>" (ERR:timeout after `timeoutMs`). */
  ask: (line: string, timeoutMs?: number) => Promise<string>
}

/** A TCP connection from namespace `ns` to host:port that stays open (ended in teardown). */
export async function holdConnection (t: Test, ns: string, host: string, port: number): Promise<HeldConnection> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', HOLD, host, String(port)], { stdio: ['pipe', 'pipe', 'inherit'], detached: true })
  t.teardown(() => { try { if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL') } catch {} })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const waiting: Array<(l: string) => void> = []
  lines.on('line', l => waiting.shift()?.(l.trim()))
  return {
    ask: async (line, timeoutMs = 5000) => await new Promise<string>(resolve => {
      const timer = setTimeout(() => { waiting.splice(waiting.indexOf(done), 1); resolve('ERR:timeout') }, timeoutMs)
      const done = (l: string): void => { clearTimeout(timer); resolve(l) }
      waiting.push(done)
      child.stdin?.write(line + '\n')
    })
  }
}

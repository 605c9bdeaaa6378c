// The userspace WireGuard process, `wireguard-go <ifname>`: start it so that it outlives
// podmeshd, wait for its control socket, and find it by PID when it has to go.
//
// How wireguard-go behaves (v0.0.20220316, checked here): the launched process creates the tun
// device and binds /var/run/wireguard/<ifname>.sock, re-executes itself with
// WG_PROCESS_FOREGROUND=1 (reparented to init, stdio on /dev/null) and exits 0. The daemon ends
// by itself, and removes its socket, when its tun device is deleted; it does NOT end when its
// network namespace is deleted. The socket directory is shared by all network namespaces.

import { promises as fs, readFileSync } from 'node:fs'
import { createConnection } from 'node:net'
import { runDaemonizing } from '../exec'

export const SOCKET_DIR = '/var/run/wireguard'
export const socketPath = (ifname: string): string => `${SOCKET_DIR}/${ifname}.sock`

/** Environment variables that would make wireguard-go stay in the foreground or reuse fds. */
const FOREGROUND_ENV = ['WG_PROCESS_FOREGROUND', 'WG_TUN_FD', 'WG_UAPI_FD']

/**
 * Launches `wireguard-go <ifname>` detached and without pipes, so that its daemon shares nothing
 * with this process (no stdio, no session, no process group) and survives its exit.
 */
export async function startWireguardGo (ifname: string): Promise<void> {
  const env = { ...process.env }
  for (const k of FOREGROUND_ENV) delete env[k]
  await runDaemonizing('wireguard-go', [ifname], { env, timeoutMs: 10_000 })
}

/**
 * True when the control socket answers a `get` with errno=0. The reply (which includes the
 * private key) is scanned for its errno line only and dropped.
 */
export async function socketAnswers (ifname: string, timeoutMs = 1000): Promise<boolean> {
  return await new Promise<boolean>(resolve => {
    const sock = createConnection(socketPath(ifname))
    let reply = ''
    const done = (ok: boolean): void => { clearTimeout(timer); sock.destroy(); resolve(ok) }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.on('connect', () => sock.write('get=1\n\n'))
    sock.on('data', (b: Buffer) => {
      reply += b.toString()
      if (reply.endsWith('\n\n')) done(/(^|\n)errno=0\n/.test(reply))
    })
    sock.on('error', () => done(false))
    sock.on('close', () => done(false))
  })
}

/** Polls the control socket until it answers or `timeoutMs` passes. */
export async function waitForSocket (ifname: string, timeoutMs = 5000): Promise<boolean> {
  const until = Date.now() + timeoutMs
  for (;;) {
    if (await socketAnswers(ifname)) return true
    if (Date.now() >= until) return false
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const netnsOf = async (pid: number | 'self'): Promise<string | undefined> =>
  await fs.readlink(`/proc/${pid}/ns/net`).catch(() => undefined)

/**
 * PIDs of `wireguard-go <ifname>` processes, found through /proc (no process spawned). With
 * `sameNetns` (the default) only those in this process's network namespace: an interface name is
 * unique per namespace, not per host.
 */
export async function findWireguardGo (ifname: string, opts: { sameNetns?: boolean } = {}): Promise<number[]> {
  const self = opts.sameNetns === false ? undefined : await netnsOf('self')
  const pids: number[] = []
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const argv = (await fs.readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(a => a !== '')
    const exe = argv[0]
    if (exe === undefined || !(exe === 'wireguard-go' || exe.endsWith('/wireguard-go'))) continue
    if (argv[argv.length - 1] !== ifname) continue
    if (self !== undefined && await netnsOf(Number(entry)) !== self) continue
    pids.push(Number(entry))
  }
  return pids
}

/** Running (a zombie counts as gone: it holds no device and no socket). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return false
  }
}

/** Waits up to `timeoutMs` for the processes to end; SIGTERM, then SIGKILL, those that do not. */
export async function reapWireguardGo (pids: readonly number[], timeoutMs = 2000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (pids.some(alive) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    const left = pids.filter(alive)
    if (left.length === 0) return
    for (const pid of left) { try { process.kill(pid, signal) } catch {} }
    const deadline = Date.now() + 1000
    while (left.some(alive) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  }
}

// Network namespaces for tests, labs and benchmarks: unique per-run names, veth pairs, a bridge
// namespace as the underlay (192.0.2.0/24), TypeScript run inside a namespace (the netlink
// package acts on the process's namespace) — one-shot or as a long-lived JSON-lines agent — and
// one teardown that stops the agents, kills the wireguard-go daemons of the interface names the
// lab handed out (they survive their namespace), and deletes the namespaces.
//
// Not tied to tap: `new Lab({ t })` registers the teardown on a tap test; scripts call
// `await lab.teardown()` themselves (in a finally).

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { findWireguardGo, reapWireguardGo, socketPath } from '../../lib/dataplane/wireguard/wireguard-go'

export const REPO_ROOT = resolve(__dirname, '../..')
/** The loader that lets `node` run this repo's TypeScript directly. */
export const TS_LOADER = `file://${REPO_ROOT}/node_modules/@tapjs/typescript/dist/esm/import.mjs`

/** What a tap test offers (and all the lab needs of it). */
export interface TeardownHost { teardown: (fn: () => unknown) => void }

export interface ShResult { stdout: string, stderr: string }

export class ShError extends Error {
  readonly code = 'ESH'
  constructor (readonly command: string, readonly exitCode: number | null, readonly stderr: string, cause: unknown) {
    super(`${command}: exit ${exitCode ?? 'signal'}${stderr.trim() !== '' ? `: ${stderr.trim()}` : ''}`, { cause })
    this.name = 'ShError'
  }
}
export const isShError = (e: unknown): e is ShError => e instanceof ShError

/**
 * Runs a command (no shell). Deliberately not lib/dataplane/exec: harness commands must not
 * move the data plane's spawn counter.
 */
export async function sh (cmd: string, args: readonly string[], opts: { input?: string, timeoutMs?: number } = {}): Promise<ShResult> {
  return await new Promise((resolvePromise, reject) => {
    const child = execFile(cmd, [...args], { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) { resolvePromise({ stdout, stderr }); return }
      const code = typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
      reject(new ShError([cmd, ...args].join(' ').slice(0, 300), code, stderr, err))
    })
    child.stdin?.on('error', () => {})
    child.stdin?.end(opts.input ?? '')
  })
}

/** A short tag unique per run (pid + random): goes into every name a Lab hands out. */
export const runTag = (): string => `${(process.pid % 46656).toString(36)}${randomBytes(2).toString('hex')}`

export interface Request { id: number, op: string, args?: unknown }
export type Reply = { id: number, ok: true, result: unknown } | { id: number, ok: false, error: { name: string, code?: string, message: string, problem?: string } }

export class AgentError extends Error {
  readonly code = 'EAGENT'
  constructor (readonly op: string, readonly remote: { name: string, code?: string, message: string, problem?: string }) {
    super(`agent ${op}: ${remote.name}${remote.code !== undefined ? ` ${remote.code}` : ''}: ${remote.message}`)
    this.name = 'AgentError'
  }
}
export const isAgentError = (e: unknown): e is AgentError => e instanceof AgentError

/**
 * A TypeScript process inside a namespace that answers JSON-lines requests on stdin/stdout (the
 * other side is `serveRequests`). Lives until stop() or kill().
 */
export class NsProcess {
  private nextId = 1
  private readonly pending = new Map<number, { op: string, resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private stderrTail = ''
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>

  constructor (readonly child: ChildProcess, readonly label: string) {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
    lines.on('line', line => {
      let reply: Reply
      try { reply = JSON.parse(line) as Reply } catch { return }
      const p = this.pending.get(reply.id)
      if (p === undefined) return
      this.pending.delete(reply.id)
      if (reply.ok) p.resolve(reply.result)
      else p.reject(new AgentError(p.op, reply.error))
    })
    child.stderr?.on('data', (b: Buffer) => { this.stderrTail = (this.stderrTail + b.toString()).slice(-4000) })
    this.exited = new Promise(resolveExit => {
      child.once('exit', (code, signal) => {
        for (const p of this.pending.values()) p.reject(new Error(`${label} exited (${code ?? signal}) during ${p.op}: ${this.stderrTail}`))
        this.pending.clear()
        resolveExit({ code, signal })
      })
    })
  }

  get pid (): number { return this.child.pid ?? -1 }

  async request<T = unknown> (op: string, args?: unknown): Promise<T> {
    const id = this.nextId++
    return await new Promise<T>((resolveReq, reject) => {
      this.pending.set(id, { op, resolve: v => resolveReq(v as T), reject })
      this.child.stdin?.write(JSON.stringify({ id, op, args }) + '\n')
    })
  }

  /** Closes stdin (the agent exits when it has answered everything) and waits; SIGKILL after 5 s. */
  async stop (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.stdin?.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
    await this.exited
    clearTimeout(timer)
  }

  /** Kills the agent's whole process group (it runs detached), as a crash or `kill -9` would. */
  async kill (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    try { process.kill(-this.pid, 'SIGKILL') } catch { this.child.kill('SIGKILL') }
    await this.exited
  }
}

/**
 * The agent side: answers requests read from stdin with `handlers[op](args)`, one JSON line
 * each, in arrival order; exits when stdin closes. Errors go back with their name, code and
 * message (and `problem`, podmesh's sub-code), so tests can assert on typed errors.
 */
export async function serveRequests (handlers: Record<string, (args: any) => Promise<unknown>>): Promise<void> {
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (line.trim() === '') continue
    const req = JSON.parse(line) as Request
    let reply: Reply
    try {
      const handler = handlers[req.op]
      if (handler === undefined) throw new Error(`unknown op ${req.op}`)
      reply = { id: req.id, ok: true, result: await handler(req.args) ?? null }
    } catch (e) {
      const err = e as Error & { code?: unknown, problem?: unknown }
      reply = {
        id: req.id,
        ok: false,
        error: {
          name: err.name ?? 'Error',
          message: err.message ?? String(e),
          ...(typeof err.code === 'string' ? { code: err.code } : {}),
          ...(typeof err.problem === 'string' ? { problem: err.problem } : {})
        }
      }
    }
    process.stdout.write(JSON.stringify(reply) + '\n')
  }
}

export class Netns {
  constructor (readonly name: string, private readonly lab: Lab) {}

  /** Runs a command inside the namespace. */
  async exec (cmd: string, args: readonly string[], opts: { input?: string, timeoutMs?: number } = {}): Promise<ShResult> {
    return await sh('ip', ['netns', 'exec', this.name, cmd, ...args], opts)
  }

  /** `ip -n <ns> ...`, stdout. */
  async ip (args: readonly string[]): Promise<string> {
    return (await sh('ip', ['-n', this.name, ...args])).stdout
  }

  async ipJson<T = unknown> (args: readonly string[]): Promise<T> {
    return JSON.parse(await this.ip(['-j', ...args])) as T
  }

  /** Runs a TypeScript file of this repo (path relative to the repo root) to completion. */
  async runTs (file: string, args: readonly string[] = [], opts: { input?: string, timeoutMs?: number } = {}): Promise<ShResult> {
    return await this.exec(process.execPath, [`--import=${TS_LOADER}`, resolve(REPO_ROOT, file), ...args], opts)
  }

  /**
   * Starts a TypeScript file as an agent (see serveRequests), in its own process group so that
   * kill() can take it down whole. Stopped by the lab's teardown.
   */
  spawnTs (file: string, args: readonly string[] = [], env: NodeJS.ProcessEnv = {}): NsProcess {
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, `--import=${TS_LOADER}`, resolve(REPO_ROOT, file), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env }
    })
    const proc = new NsProcess(child, `${file} in ${this.name}`)
    this.lab.track(proc)
    return proc
  }

  /** Whether `ip` answers pings from this namespace (count tries, `waitS` each). */
  async pings (ip: string, opts: { count?: number, waitS?: number } = {}): Promise<boolean> {
    try {
      await this.exec('ping', [ip.includes(':') ? '-6' : '-4', '-c', String(opts.count ?? 2), '-i', '0.2', '-W', String(opts.waitS ?? 2), ip])
      return true
    } catch {
      return false
    }
  }
}

/** A bridge in a namespace of its own: the shared underlay that lab nodes attach to. */
export class Underlay {
  constructor (readonly ns: Netns, readonly bridge: string, private readonly lab: Lab) {}

  /**
   * Connects `node` with a veth pair: one end on the bridge, the other in `node` named `ifname`
   * with `address` (CIDR form, 192.0.2.x/24 or 2001:db8::x/64), up. Returns the node-side name.
   */
  async attach (node: Netns, address: string | readonly string[], ifname = 'eth0'): Promise<string> {
    const outer = this.lab.ifname('u')
    await this.ns.ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', ifname, 'netns', node.name])
    await this.ns.ip(['link', 'set', outer, 'master', this.bridge, 'up'])
    for (const a of typeof address === 'string' ? [address] : address) {
      await node.ip(['addr', 'add', a, 'dev', ifname, ...(a.includes(':') ? ['nodad'] : [])])
    }
    await node.ip(['link', 'set', ifname, 'up'])
    return ifname
  }
}

/**
 * Everything one test or lab run creates. Names are `<prefix><tag><role>` (≤ 15 characters, so
 * they fit interface names); the tag is unique per run.
 */
export class Lab {
  readonly tag: string
  private readonly prefix: string
  private readonly namespaces: Netns[] = []
  private readonly ifnames = new Set<string>()
  private readonly agents: NsProcess[] = []
  private counter = 0
  private tornDown = false

  constructor (opts: { t?: TeardownHost, prefix?: string } = {}) {
    this.prefix = opts.prefix ?? 'pm'
    this.tag = runTag()
    opts.t?.teardown(async () => { await this.teardown() })
  }

  /** A unique name for `role`; throws rather than truncating into a possible collision. */
  name (role: string): string {
    const n = `${this.prefix}${this.tag}${role}${(this.counter++).toString(36)}`
    if (n.length > 15) throw new Error(`name ${n} is longer than 15 characters; use a shorter role or prefix`)
    return n
  }

  /**
   * A unique interface name. Every wireguard-go daemon running for one of these names is killed
   * on teardown: the daemon survives its namespace, and its socket dir is shared by all of them.
   */
  ifname (role: string): string {
    const n = this.name(role)
    this.ifnames.add(n)
    return n
  }

  async netns (role: string): Promise<Netns> {
    const ns = new Netns(this.name(role), this)
    await sh('ip', ['netns', 'add', ns.name])
    this.namespaces.push(ns)
    await ns.ip(['link', 'set', 'lo', 'up'])
    return ns
  }

  /** A namespace holding a bridge (up, MTU 1500): the underlay segment. */
  async underlay (): Promise<Underlay> {
    const ns = await this.netns('ul')
    const bridge = this.ifname('br')
    await ns.ip(['link', 'add', bridge, 'type', 'bridge'])
    await ns.ip(['link', 'set', bridge, 'up'])
    return new Underlay(ns, bridge, this)
  }

  /** A veth pair between two namespaces, each end with its addresses (CIDR form) and up. */
  async veth (a: { ns: Netns, addresses?: string[] }, b: { ns: Netns, addresses?: string[] }): Promise<[string, string]> {
    const an = this.ifname('v')
    const bn = this.ifname('v')
    await a.ns.ip(['link', 'add', an, 'type', 'veth', 'peer', 'name', bn, 'netns', b.ns.name])
    for (const [end, name] of [[a, an], [b, bn]] as const) {
      for (const addr of end.addresses ?? []) await end.ns.ip(['addr', 'add', addr, 'dev', name, ...(addr.includes(':') ? ['nodad'] : [])])
      await end.ns.ip(['link', 'set', name, 'up'])
    }
    return [an, bn]
  }

  track (proc: NsProcess): void { this.agents.push(proc) }

  /** PIDs of wireguard-go daemons serving this lab's interface names (in any namespace). */
  async wireguardGoPids (): Promise<number[]> {
    const pids: number[] = []
    for (const n of this.ifnames) pids.push(...await findWireguardGo(n, { sameNetns: false }))
    return pids
  }

  /** Stops agents, kills this lab's wireguard-go daemons by PID, deletes its namespaces. Idempotent. */
  async teardown (): Promise<void> {
    if (this.tornDown) return
    this.tornDown = true
    await Promise.all(this.agents.map(async a => await a.kill().catch(() => {})))
    await reapWireguardGo(await this.wireguardGoPids(), 0)
    for (const ns of this.namespaces.reverse()) await sh('ip', ['netns', 'del', ns.name]).catch(() => {})
    // A SIGKILLed wireguard-go leaves its socket file behind.
    for (const n of this.ifnames) await fs.rm(socketPath(n), { force: true })
  }
}

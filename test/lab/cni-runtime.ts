// A tiny CNI runtime for tests and the lab: executes a .conflist the way a container runtime
// does (CNI spec 1.0: ADD each plugin in order with the previous plugin's result as prevResult,
// DEL in reverse order), so pods get their interfaces from the real reference plugins.
//
// CLI (prints the ADD result as JSON):
//   node --import=<ts loader> test/lab/cni-runtime.ts add|del <conflist> <netns> <containerId>
//        [--if eth0] [--host-netns <name>] [--cache-dir <dir>] [--plugin-dir <dir>]...
// <netns> is a name (/var/run/netns/<name>) or a path.

import { spawn } from 'node:child_process'
import { promises as fs, constants as fsConstants } from 'node:fs'
import { join } from 'node:path'

export interface CniIp { address: string, gateway?: string, interface?: number }
export interface CniInterface { name: string, mac?: string, sandbox?: string }
export interface CniResult {
  cniVersion: string
  interfaces?: CniInterface[]
  ips?: CniIp[]
  routes?: Array<{ dst: string, gw?: string }>
  dns?: unknown
}

export interface PortMapping { hostPort: number, containerPort: number, protocol: 'tcp' | 'udp' | 'sctp', hostIP?: string }
/** Runtime-provided capability arguments, handed to plugins that declare the capability. */
export interface CapabilityArgs { portMappings?: PortMapping[], [capability: string]: unknown }

interface PluginConf { type: string, capabilities?: Record<string, boolean>, [key: string]: unknown }
interface ConflistDoc { cniVersion: string, name: string, plugins: PluginConf[] }

export interface CniOptions {
  /** The conflist, as a file or as an object (exactly one). */
  conflistPath?: string
  conflist?: unknown
  containerId: string
  /** The pod's network namespace: a name under /var/run/netns or a path. */
  netns: string
  ifName?: string
  pluginDirs?: string[]
  /** Run the plugins inside this named netns (the lab node's "host"); default: this process's netns. */
  hostNetns?: string
  capabilityArgs?: CapabilityArgs
  /**
   * The CNI conventions' `args` a runtime puts in every plugin's config (e.g. pod labels:
   * `{ cni: { labels: [{ key, value }] } }`); ADD keeps them for the matching DEL.
   */
  args?: Record<string, unknown>
  /** Where ADD keeps its result and capability args for the matching DEL (the spec's cached prevResult). */
  cacheDir?: string
  /** Per plugin invocation; default 30 s. */
  timeoutMs?: number
}

export type CniCommand = 'ADD' | 'DEL'

export class CniRuntimeError extends Error {
  readonly code = 'ECNIRUNTIME'
  constructor (readonly reason: 'bad-conflist' | 'no-plugin' | 'exec', message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CniRuntimeError'
  }
}
export const isCniRuntimeError = (e: unknown): e is CniRuntimeError => e instanceof CniRuntimeError

/** A plugin failed: its name, the command, its CNI error (code/msg/details) and its stderr. */
export class CniPluginError extends Error {
  readonly code = 'ECNIPLUGIN'
  constructor (
    readonly plugin: string,
    readonly command: CniCommand,
    readonly exitCode: number | null,
    readonly cniError: { code?: number, msg?: string, details?: string } | undefined,
    readonly stderr: string,
    readonly stdout: string
  ) {
    const what = cniError?.msg !== undefined
      ? `${cniError.msg}${cniError.details !== undefined && cniError.details !== '' ? ` (${cniError.details})` : ''} [code ${cniError.code ?? '?'}]`
      : stdout.trim() || `exit ${exitCode ?? 'signal'}`
    super(`CNI ${command} ${plugin}: ${what}${stderr.trim() !== '' ? `; stderr: ${stderr.trim()}` : ''}`)
    this.name = 'CniPluginError'
  }
}
export const isCniPluginError = (e: unknown): e is CniPluginError => e instanceof CniPluginError

const DEFAULT_PLUGIN_DIRS = ['/usr/lib/cni']
const DEFAULT_TIMEOUT_MS = 30_000

const netnsPath = (netns: string): string => (netns.includes('/') ? netns : `/var/run/netns/${netns}`)

async function loadConflist (opts: CniOptions): Promise<ConflistDoc> {
  let doc: unknown = opts.conflist
  if ((opts.conflistPath === undefined) === (opts.conflist === undefined)) {
    throw new CniRuntimeError('bad-conflist', 'give exactly one of conflistPath and conflist')
  }
  if (opts.conflistPath !== undefined) {
    try {
      doc = JSON.parse(await fs.readFile(opts.conflistPath, 'utf8'))
    } catch (e) {
      throw new CniRuntimeError('bad-conflist', `${opts.conflistPath}: ${(e as Error).message}`, { cause: e })
    }
  }
  const c = doc as Partial<ConflistDoc> | null
  const where = opts.conflistPath ?? 'conflist'
  if (c === null || typeof c !== 'object' || typeof c.name !== 'string' || typeof c.cniVersion !== 'string' ||
    !Array.isArray(c.plugins) || c.plugins.length === 0 || !c.plugins.every(p => typeof p?.type === 'string')) {
    throw new CniRuntimeError('bad-conflist', `${where}: needs name, cniVersion and plugins[] each with a type`)
  }
  return c as ConflistDoc
}

async function findPlugin (type: string, dirs: readonly string[]): Promise<string> {
  if (type.includes('/')) throw new CniRuntimeError('no-plugin', `plugin type "${type}" must be a bare name`)
  for (const dir of dirs) {
    const path = join(dir, type)
    try {
      await fs.access(path, fsConstants.X_OK)
      return path
    } catch { /* try the next dir */ }
  }
  throw new CniRuntimeError('no-plugin', `plugin "${type}" not found in ${dirs.join(':')}`)
}

/** The stdin a plugin gets: its own config plus name, cniVersion, prevResult and the capability args it declared. */
function pluginStdin (list: ConflistDoc, plugin: PluginConf, prevResult: CniResult | undefined, caps: CapabilityArgs, args: Record<string, unknown> | undefined): string {
  const runtimeConfig: Record<string, unknown> = {}
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && caps[cap] !== undefined) runtimeConfig[cap] = caps[cap]
  }
  return JSON.stringify({
    ...plugin,
    name: list.name,
    cniVersion: list.cniVersion,
    ...(args !== undefined ? { args } : {}),
    ...(Object.keys(runtimeConfig).length > 0 ? { runtimeConfig } : {}),
    ...(prevResult !== undefined ? { prevResult } : {})
  })
}

interface Invocation {
  command: CniCommand
  pluginPath: string
  type: string
  stdin: string
  opts: CniOptions
}

async function runPlugin (inv: Invocation): Promise<string> {
  const { opts } = inv
  const env = {
    ...process.env,
    CNI_COMMAND: inv.command,
    CNI_CONTAINERID: opts.containerId,
    CNI_NETNS: netnsPath(opts.netns),
    CNI_IFNAME: opts.ifName ?? 'eth0',
    CNI_PATH: (opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS).join(':')
  }
  // Plugins act on the netns they run in as the "host" side (bridge, forwarding sysctls).
  const [file, args] = opts.hostNetns === undefined
    ? [inv.pluginPath, []]
    : ['ip', ['netns', 'exec', opts.hostNetns, inv.pluginPath]]
  return await new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS)
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', e => {
      clearTimeout(timer)
      reject(new CniRuntimeError('exec', `CNI ${inv.command} ${inv.type}: cannot run ${file}: ${e.message}`, { cause: e }))
    })
    child.on('close', code => {
      clearTimeout(timer)
      if (code === 0) { resolve(stdout); return }
      if (timedOut) {
        reject(new CniRuntimeError('exec', `CNI ${inv.command} ${inv.type}: killed after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms; stderr: ${stderr.trim()}`))
        return
      }
      let cniError: CniPluginError['cniError']
      try { cniError = JSON.parse(stdout) } catch { /* not JSON: the message is the raw output */ }
      reject(new CniPluginError(inv.type, inv.command, code, cniError, stderr, stdout))
    })
    child.stdin.on('error', () => { /* the plugin may exit before reading stdin; its exit says why */ })
    child.stdin.end(inv.stdin)
  })
}

interface CacheEntry { result: CniResult, capabilityArgs: CapabilityArgs, args?: Record<string, unknown> }
const cacheFile = (dir: string, list: ConflistDoc, opts: CniOptions): string =>
  join(dir, `${list.name}-${opts.containerId}-${opts.ifName ?? 'eth0'}.json`)

/**
 * Runs ADD of every plugin in order; returns the last plugin's result. A failure undoes nothing:
 * like a container runtime, the caller then runs cniDel to release what the earlier plugins took.
 */
export async function cniAdd (opts: CniOptions): Promise<CniResult> {
  const list = await loadConflist(opts)
  const dirs = opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS
  const caps = opts.capabilityArgs ?? {}
  const args = opts.args
  let prev: CniResult | undefined
  for (const plugin of list.plugins) {
    const pluginPath = await findPlugin(plugin.type, dirs)
    const out = await runPlugin({ command: 'ADD', pluginPath, type: plugin.type, stdin: pluginStdin(list, plugin, prev, caps, args), opts })
    try {
      prev = JSON.parse(out) as CniResult
    } catch (e) {
      throw new CniRuntimeError('exec', `CNI ADD ${plugin.type}: result is not JSON: ${out.slice(0, 200)}`, { cause: e })
    }
  }
  const result = prev as CniResult
  if (opts.cacheDir !== undefined) {
    await fs.mkdir(opts.cacheDir, { recursive: true })
    const entry: CacheEntry = { result, capabilityArgs: caps, ...(args !== undefined ? { args } : {}) }
    await fs.writeFile(cacheFile(opts.cacheDir, list, opts), JSON.stringify(entry))
  }
  return result
}

/**
 * Runs DEL of every plugin in reverse order, with the ADD result as prevResult when known
 * (`prevResult`, else the cache). Every plugin gets its DEL even when an earlier one fails, so
 * a half-failed pod still frees what it can; the first failure is then thrown.
 */
export async function cniDel (opts: CniOptions & { prevResult?: CniResult }): Promise<void> {
  const list = await loadConflist(opts)
  const dirs = opts.pluginDirs ?? DEFAULT_PLUGIN_DIRS
  let cached: CacheEntry | undefined
  const cachePath = opts.cacheDir === undefined ? undefined : cacheFile(opts.cacheDir, list, opts)
  if (cachePath !== undefined) {
    try { cached = JSON.parse(await fs.readFile(cachePath, 'utf8')) as CacheEntry } catch { /* no ADD cached: DEL without prevResult */ }
  }
  const prev = opts.prevResult ?? cached?.result
  const caps = opts.capabilityArgs ?? cached?.capabilityArgs ?? {}
  const args = opts.args ?? cached?.args
  const errors: unknown[] = []
  for (const plugin of [...list.plugins].reverse()) {
    try {
      const pluginPath = await findPlugin(plugin.type, dirs)
      await runPlugin({ command: 'DEL', pluginPath, type: plugin.type, stdin: pluginStdin(list, plugin, prev, caps, args), opts })
    } catch (e) {
      errors.push(e)
    }
  }
  if (errors.length > 0) throw errors[0]
  if (cachePath !== undefined) await fs.rm(cachePath, { force: true })
}

// ---- CLI ----

function parseCli (argv: readonly string[]): { command: 'add' | 'del', opts: CniOptions } {
  const positional: string[] = []
  const opts: Partial<CniOptions> = {}
  const pluginDirs: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const value = (): string => {
      const v = argv[++i]
      if (v === undefined) throw new CniRuntimeError('bad-conflist', `${arg} needs a value`)
      return v
    }
    if (arg === '--if') opts.ifName = value()
    else if (arg === '--host-netns') opts.hostNetns = value()
    else if (arg === '--cache-dir') opts.cacheDir = value()
    else if (arg === '--plugin-dir') pluginDirs.push(value())
    else positional.push(arg)
  }
  const [command, conflistPath, netns, containerId] = positional
  if ((command !== 'add' && command !== 'del') || conflistPath === undefined || netns === undefined || containerId === undefined || positional.length > 4) {
    throw new CniRuntimeError('bad-conflist',
      'usage: cni-runtime.ts add|del <conflist> <netns> <containerId> [--if eth0] [--host-netns name] [--cache-dir dir] [--plugin-dir dir]...')
  }
  return { command, opts: { ...opts, conflistPath, netns, containerId, ...(pluginDirs.length > 0 ? { pluginDirs } : {}) } }
}

async function main (argv: readonly string[]): Promise<number> {
  try {
    const { command, opts } = parseCli(argv)
    if (command === 'add') process.stdout.write(JSON.stringify(await cniAdd(opts), null, 2) + '\n')
    else await cniDel(opts)
    return 0
  } catch (e) {
    process.stderr.write(`cni-runtime: ${(e as Error).message}\n`)
    return 1
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then(code => { process.exitCode = code })
}

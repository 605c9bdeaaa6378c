// Network namespaces and commands for the CNI tests: unique per-run names, removed on teardown
// (also when a test fails), and a way to run TypeScript inside a namespace (the netlink package
// acts on the netns of the process).

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { promisify } from 'node:util'

const exec = promisify(execFile)
const ROOT = resolve(__dirname, '../..')
const TS_LOADER = `file://${ROOT}/node_modules/@tapjs/typescript/dist/esm/import.mjs`

interface Teardown { teardown: (fn: () => unknown) => void }

/** A short random tag, unique per run: goes into namespace and interface names. */
export const runTag = (): string => `${(process.pid % 10000).toString(36)}${randomBytes(3).toString('hex')}`

export async function run (cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<string> {
  try {
    const p = exec(cmd, args, { encoding: 'utf8', timeout: 60_000 })
    if (opts.input !== undefined) p.child.stdin?.end(opts.input)
    return (await p).stdout
  } catch (e) {
    const err = e as Error & { stderr?: string }
    throw new Error(`${cmd} ${args.join(' ')}: ${err.message}${err.stderr !== undefined ? `\n${err.stderr}` : ''}`, { cause: e })
  }
}

/** Adds a namespace `pmc-<tag>-<role>`, deleted on teardown. */
export async function addNetns (t: Teardown, tag: string, role: string): Promise<string> {
  const name = `pmc-${tag}-${role}`
  await run('ip', ['netns', 'add', name])
  t.teardown(async () => { await run('ip', ['netns', 'del', name]).catch(() => {}) })
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  return name
}

/** Runs a TypeScript file of this repo inside `netns`; returns its stdout. */
export async function runTsIn (netns: string, file: string, args: readonly string[]): Promise<string> {
  return await run('ip', ['netns', 'exec', netns, process.execPath, `--import=${TS_LOADER}`, resolve(ROOT, file), ...args])
}

/** `ip -j` output of a command run in `netns`. */
export async function ipJson<T = unknown> (netns: string, args: readonly string[]): Promise<T> {
  return JSON.parse(await run('ip', ['-j', '-n', netns, ...args])) as T
}

/** Whether `ping` from `netns` to `ip` gets a reply (two tries, 2 s each). */
export async function pings (netns: string, ip: string): Promise<boolean> {
  const family = ip.includes(':') ? '-6' : '-4'
  try {
    await run('ip', ['netns', 'exec', netns, 'ping', family, '-c', '2', '-i', '0.2', '-W', '2', ip])
    return true
  } catch {
    return false
  }
}

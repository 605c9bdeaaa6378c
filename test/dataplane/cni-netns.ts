// The CNI tests' view of network namespaces, by name: unique per-run names removed on teardown
// (also when a test fails), commands and TypeScript run inside them. Built on test/harness/netns.ts
// (its runner, run tag and loader); only the name-based call style is this file's own.

import { resolve } from 'node:path'
import { REPO_ROOT, TS_LOADER, runTag, sh, type TeardownHost } from '../harness/netns'

export { runTag }

export async function run (cmd: string, args: readonly string[], opts: { input?: string } = {}): Promise<string> {
  return (await sh(cmd, args, opts)).stdout
}

/** Adds a namespace `pmc-<tag>-<role>`, deleted on teardown. */
export async function addNetns (t: TeardownHost, tag: string, role: string): Promise<string> {
  const name = `pmc-${tag}-${role}`
  await run('ip', ['netns', 'add', name])
  t.teardown(async () => { await run('ip', ['netns', 'del', name]).catch(() => {}) })
  await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  return name
}

/** Runs a TypeScript file of this repo inside `netns`; returns its stdout. */
export async function runTsIn (netns: string, file: string, args: readonly string[]): Promise<string> {
  return await run('ip', ['netns', 'exec', netns, process.execPath, `--import=${TS_LOADER}`, resolve(REPO_ROOT, file), ...args])
}

/** `ip -j` output of a command run in `netns`. */
export async function ipJson<T = unknown> (netns: string, args: readonly string[]): Promise<T> {
  return JSON.parse(await run('ip', ['-j', '-n', netns, ...args])) as T
}

/** Whether `ping` from `netns` to `ip` gets a reply (two tries, 2 s each). */
export async function pings (netns: string, ip: string): Promise<boolean> {
  try {
    await run('ip', ['netns', 'exec', netns, 'ping', ip.includes(':') ? '-6' : '-4', '-c', '2', '-i', '0.2', '-W', '2', ip])
    return true
  } catch {
    return false
  }
}

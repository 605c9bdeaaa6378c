// Runs a benchmark's measuring half inside a fresh network namespace (the netlink package acts on
// the namespace of the process, so the measuring code must start there): creates the namespace
// with lo up and a veth pair carrying 192.0.2.2/24 (an underlay address for a daemon), runs
// `ip netns exec <ns> node <loader> <script> --inner …` with our stdio, and always removes the
// namespace and every wireguard-go whose interface name starts with the run's tag.
import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

export const REPO = resolve(__dirname, '..')
/** For `node --import=…`: tap's TypeScript loader, resolved from this checkout (see ts-loader.mjs). */
export const TS_LOADER = pathToFileURL(join(REPO, 'bench', 'ts-loader.mjs')).href

/** ≤ 6 characters: interface names are built from it and must stay ≤ 15. */
export const benchTag = (): string => `b${randomBytes(2).toString('hex')}`

const ip = (...args: string[]): void => { execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }) }

/** PIDs of wireguard-go processes for interfaces named <tag>…, read from /proc. */
export function wireguardGoPids (tag: string): number[] {
  let out = ''
  try { out = execFileSync('pgrep', ['-f', `^wireguard-go ${tag}`], { encoding: 'utf8' }) } catch { return [] }
  return out.split('\n').map(Number).filter(n => n > 0)
}

export function killWireguardGo (tag: string): void {
  for (const pid of wireguardGoPids(tag)) { try { process.kill(pid, 'SIGKILL') } catch {} }
  try {
    for (const f of execFileSync('ls', ['/var/run/wireguard'], { encoding: 'utf8' }).split('\n')) {
      if (f.startsWith(tag) && f.endsWith('.sock')) rmSync(`/var/run/wireguard/${f}`, { force: true })
    }
  } catch {}
}

export async function runInNetns (script: string, args: readonly string[]): Promise<number> {
  const tag = benchTag()
  const ns = `${tag}ns`
  const cleanup = (): void => {
    try { ip('netns', 'del', ns) } catch {}
    killWireguardGo(tag)
  }
  const onSignal = (): void => { cleanup(); process.exit(130) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    ip('netns', 'add', ns)
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    ip('-n', ns, 'link', 'add', `${tag}u0`, 'type', 'veth', 'peer', 'name', `${tag}u1`)
    ip('-n', ns, 'addr', 'add', '192.0.2.2/24', 'dev', `${tag}u0`)
    ip('-n', ns, 'link', 'set', `${tag}u0`, 'up')
    ip('-n', ns, 'link', 'set', `${tag}u1`, 'up')
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, `--import=${TS_LOADER}`, script, '--inner', ...args],
      { stdio: 'inherit', env: { ...process.env, BENCH_TAG: tag } })
    return await new Promise<number>(resolve => child.on('exit', code => resolve(code ?? 1)))
  } finally {
    cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

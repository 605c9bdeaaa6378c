// Runs the data plane's external commands (`wg`, `wireguard-go`, `ip`): argv only, never a
// shell, with a timeout, typed failures, and a process-wide count of spawned processes — the
// reconcile loop promises "one `wg` per apply" and "at most one process per idle resync", and
// tests and benchmarks check those promises against this counter.

import { spawn, type StdioOptions } from 'node:child_process'

export interface RunOptions {
  /** Written to the child's stdin, then stdin is closed (keys and configs go here, never in argv). */
  input?: string
  /** Kill the child (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number
  /** The child's environment before scrubbing (childEnvironment); default process.env. */
  env?: NodeJS.ProcessEnv
}

export interface RunResult { stdout: string, stderr: string }

/** How much of a long argv goes into error messages (a 1 MB `wg set` would drown the log line). */
const COMMAND_TEXT_LIMIT = 300

export class CommandError extends Error {
  readonly code = 'ECOMMAND'
  constructor (
    /** The command line, shortened to a readable length. */
    readonly command: string,
    /** Exit code; null when the process was killed by a signal or never started. */
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderr: string,
    readonly timedOut: boolean,
    cause?: unknown,
    /** What the child printed before it failed (some commands report on stdout: ping). */
    readonly stdout = ''
  ) {
    const why = timedOut
      ? 'timed out'
      : exitCode !== null ? `exited with code ${exitCode}` : signal !== null ? `killed by ${signal}` : 'could not start'
    const detail = stderr.trim() !== '' ? `: ${stderr.trim()}` : cause instanceof Error ? `: ${cause.message}` : ''
    super(`${command} ${why}${detail}`, cause === undefined ? undefined : { cause })
    this.name = 'CommandError'
  }
}
export const isCommandError = (e: unknown): e is CommandError => e instanceof CommandError

let spawned = 0

/** podmesh's own settings (PODMESH_ETCD_PASSWORD among them) and anything named like a secret. */
const SECRET_ENV = /^PODMESH_|PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL/i

/**
 * The environment a child gets: `env` without podmesh's settings and secret-looking variables.
 * No child (`wg`, `wireguard-go`, `ip`, `systemd-notify`) reads them, and `wireguard-go` outlives
 * podmeshd with its environment readable in /proc/<pid>/environ.
 */
export function childEnvironment (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !SECRET_ENV.test(k)))
}

/** Processes spawned by this module since the process started. */
export const spawnCount = (): number => spawned

export function commandText (cmd: string, args: readonly string[]): string {
  const text = [cmd, ...args.map(a => (a === '' || /[\s"'\\]/.test(a) ? JSON.stringify(a) : a))].join(' ')
  return text.length > COMMAND_TEXT_LIMIT ? `${text.slice(0, COMMAND_TEXT_LIMIT)}… (${args.length} args)` : text
}

/** Runs `cmd args` to completion; a non-zero exit, a signal or a timeout is a CommandError. */
export async function run (cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return await runWith(cmd, args, ['pipe', 'pipe', 'pipe'], false, opts)
}

/**
 * Runs a command that daemonizes itself (`wireguard-go`): its own session (detached) and no pipes
 * (stdio ignored) so that the daemon it forks shares nothing with this process and outlives it.
 * Resolves when the launcher exits 0; stdout/stderr are not captured.
 */
export async function runDaemonizing (cmd: string, args: readonly string[], opts: Omit<RunOptions, 'input'> = {}): Promise<void> {
  await runWith(cmd, args, 'ignore', true, opts)
}

async function runWith (cmd: string, args: readonly string[], stdio: StdioOptions, detached: boolean, opts: RunOptions): Promise<RunResult> {
  const text = commandText(cmd, args)
  const timeoutMs = opts.timeoutMs ?? 30_000
  return await new Promise<RunResult>((resolve, reject) => {
    spawned++
    let child
    try {
      child = spawn(cmd, [...args], { stdio, detached, env: childEnvironment(opts.env ?? process.env) })
    } catch (e) {
      // E2BIG and friends are thrown synchronously by spawn.
      reject(new CommandError(text, null, null, '', false, e))
      return
    }
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout?.on('data', (b: Buffer) => out.push(b))
    child.stderr?.on('data', (b: Buffer) => err.push(b))
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    child.once('error', e => {
      clearTimeout(timer)
      reject(new CommandError(text, null, null, Buffer.concat(err).toString(), false, e))
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      const stdout = Buffer.concat(out).toString()
      const stderr = Buffer.concat(err).toString()
      if (code === 0 && !timedOut) resolve({ stdout, stderr })
      else reject(new CommandError(text, code, signal, stderr, timedOut, undefined, stdout))
    })
    if (child.stdin !== null) {
      // A child that exits without reading its stdin must not crash us with EPIPE.
      child.stdin.on('error', () => {})
      child.stdin.end(opts.input ?? '')
    }
  })
}

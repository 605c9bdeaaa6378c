// Runs a compiled CLI (podmeshctl) as a child with extra environment, for tests that assert its
// exit code, stdout and stderr.
import { execFile } from 'node:child_process'

export interface CliRun { code: number, stdout: string, stderr: string }

export async function runCli (cli: string, args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return await new Promise(resolve => {
    execFile(process.execPath, [cli, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

// Puts podmesh's service rules into the kernel: one `nft -f -` per change, the script on stdin
// (a 10,000-service table does not fit in argv, and one process is the promise of the reconcile
// loop). Reads the table back as JSON for diff/status, and deletes it on `--leave`. Only the
// table `inet podmesh` is ever named (render.ts writes every command).

import { isCommandError, run } from '../exec'
import { SERVICE_TABLE, type ServiceRuleset } from '../../service/rules'
import { diffRulesets, isEmptyChange } from '../../service/rules-diff'
import { renderChange, renderFullSync, renderRemoval } from './render'

const NFT = 'nft'

/** `nft` refused a script or could not run; `command` and `stderr` say which and why. */
export class NftError extends Error {
  readonly code = 'ENFT'
  constructor (readonly command: string, readonly stderr: string, readonly exitCode: number | null, cause: unknown) {
    super(`${command} failed${exitCode !== null ? ` (exit ${exitCode})` : ''}${stderr.trim() !== '' ? `: ${stderr.trim()}` : cause instanceof Error ? `: ${cause.message}` : ''}`, { cause })
    this.name = 'NftError'
  }
}
export const isNftError = (e: unknown): e is NftError => e instanceof NftError

/**
 * How long one `nft -f` may run: exec.ts's 30 s for any command, plus 10 ms per KiB of script.
 * nft loads podmesh's scripts here at 2.5–4 MB/s (a full sync of 10,000 services × 10 endpoints
 * is 4.7 MB and takes 1.1–2 s on the shared 2-core machine, bench/README.md), so this allows a
 * machine some 30 times slower before a full sync is called stuck: 76 s for those 4.7 MB, 30 s
 * for a partial update of a few lines.
 */
export const nftTimeoutMs = (script: string): number => 30_000 + Math.ceil(Buffer.byteLength(script) / 1024) * 10

async function nft (args: readonly string[], input?: string): Promise<string> {
  try {
    return (await run(NFT, args, input === undefined ? {} : { input, timeoutMs: nftTimeoutMs(input) })).stdout
  } catch (e) {
    if (isCommandError(e)) throw new NftError(e.command, e.stderr, e.exitCode, e)
    throw e
  }
}

/** Runs one script as one transaction (one spawn); a refused script changes nothing. */
export async function applyNftScript (script: string): Promise<void> {
  if (script === '') return
  await nft(['-f', '-'], script)
}

export type ApplyKind = 'full' | 'partial' | 'none'

/**
 * Brings the kernel from `previous` (what the last successful apply put there; undefined when
 * unknown) to `next` in one spawn: a partial update when the diff allows one, else a full sync.
 * The caller passes undefined after a failed apply, so that drift is repaired by a full sync.
 */
export async function applyServiceRules (next: ServiceRuleset, previous?: ServiceRuleset): Promise<ApplyKind> {
  const change = previous === undefined ? 'full' : diffRulesets(previous, next)
  if (change === 'full') {
    await applyNftScript(renderFullSync(next))
    return 'full'
  }
  if (isEmptyChange(change)) return 'none'
  await applyNftScript(renderChange(change))
  return 'partial'
}

/** Deletes table inet podmesh (`--leave`); an absent table is fine. Other tables are never named. */
export async function removeServiceTable (): Promise<void> {
  await applyNftScript(renderRemoval())
}

/** The `nftables` array of `nft -j list table inet podmesh`, or undefined when the table does not exist. */
export async function listServiceTable (): Promise<unknown[] | undefined> {
  let out: string
  try {
    out = await nft(['-j', 'list', 'table', SERVICE_TABLE.family, SERVICE_TABLE.name])
  } catch (e) {
    // nft's only word for a missing table is its message (ENOENT from the kernel).
    if (isNftError(e) && /No such file or directory/i.test(e.stderr)) return undefined
    throw e
  }
  const parsed = JSON.parse(out) as { nftables?: unknown[] }
  if (!Array.isArray(parsed.nftables)) throw new NftError(`${NFT} -j list table ${SERVICE_TABLE.family} ${SERVICE_TABLE.name}`, 'output has no nftables array', 0, undefined)
  return parsed.nftables
}

/**
 * Whether table inet podmesh exists: the resync's drift check. `nft list tables` names tables
 * only, so this stays cheap however large the table is (listing it would cost a full dump).
 */
export async function serviceTableExists (): Promise<boolean> {
  const out = await nft(['list', 'tables', SERVICE_TABLE.family])
  return out.split('\n').some(l => l.trim() === `table ${SERVICE_TABLE.family} ${SERVICE_TABLE.name}`)
}

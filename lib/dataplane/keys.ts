// The node's WireGuard private key: made on the node by `wg genkey`, kept in
// <stateDir>/wireguard.key (mode 0600) across restarts, never logged and never returned — callers
// get the file's path (for `wg set private-key`) and the public key only.

import { randomBytes } from 'node:crypto'
import { promises as fs, constants as fsc } from 'node:fs'
import { join } from 'node:path'
import { run } from './exec'
import { isWireguardKey } from '../store/wireguard-key'

export const PRIVATE_KEY_FILE = 'wireguard.key'

export type PrivateKeyProblem = 'mode' | 'not-a-file' | 'malformed'

export class PrivateKeyError extends Error {
  readonly code = 'EPRIVATEKEY'
  constructor (readonly file: string, readonly problem: PrivateKeyProblem, message: string, cause?: unknown) {
    super(`${file}: ${message}`, cause === undefined ? undefined : { cause })
    this.name = 'PrivateKeyError'
  }
}
export const isPrivateKeyError = (e: unknown): e is PrivateKeyError => e instanceof PrivateKeyError

export interface NodeKey {
  /** Absolute path of the 0600 private key file. */
  privateKeyFile: string
  publicKey: string
}

/**
 * Reuses <stateDir>/wireguard.key or creates it. Refuses (PrivateKeyError) a key file that group
 * or others may read or write, that is not a regular file, or that does not hold one key.
 */
export async function loadOrCreatePrivateKey (stateDir: string): Promise<NodeKey> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 })
  const file = join(stateDir, PRIVATE_KEY_FILE)
  let key = await readKeyFile(file)
  if (key === undefined) key = await createKeyFile(file)
  const { stdout } = await run('wg', ['pubkey'], { input: `${key}\n` })
  return { privateKeyFile: file, publicKey: stdout.trim() }
}

async function readKeyFile (file: string): Promise<string | undefined> {
  let st
  try {
    st = await fs.lstat(file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw e
  }
  if (!st.isFile()) throw new PrivateKeyError(file, 'not-a-file', 'is not a regular file')
  if ((st.mode & 0o077) !== 0) {
    throw new PrivateKeyError(file, 'mode', `mode ${(st.mode & 0o777).toString(8)} lets group or others at the private key; chmod 600 it`)
  }
  const key = (await fs.readFile(file, 'utf8')).trim()
  // The message never quotes the content: a malformed file may still be mostly a key.
  if (!isWireguardKey(key)) throw new PrivateKeyError(file, 'malformed', 'does not hold one base64 WireGuard key')
  return key
}

/** Writes a fresh key to a 0600 temp file beside `file`, then renames it in place (atomic). */
async function createKeyFile (file: string): Promise<string> {
  const { stdout } = await run('wg', ['genkey'])
  const key = stdout.trim()
  if (!isWireguardKey(key)) throw new PrivateKeyError(file, 'malformed', '`wg genkey` returned something that is not a key')
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  // O_EXCL + mode 0600 at creation: the key is never readable by others, whatever the umask.
  const fh = await fs.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600)
  try {
    await fh.chmod(0o600)
    await fh.writeFile(`${key}\n`)
    await fh.sync()
  } catch (e) {
    await fh.close()
    await fs.rm(tmp, { force: true })
    throw e
  }
  await fh.close()
  try {
    // link() fails if a concurrent start already created the file: then that key wins.
    await fs.link(tmp, file)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
  } finally {
    await fs.rm(tmp, { force: true })
  }
  const kept = await readKeyFile(file)
  if (kept === undefined) throw new PrivateKeyError(file, 'not-a-file', 'vanished right after creation')
  return kept
}

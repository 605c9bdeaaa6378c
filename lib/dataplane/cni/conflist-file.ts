// The node's CNI config file on disk: written atomically (temp file in the same dir, fsync,
// rename, fsync of the dir) so a container runtime never reads half a file, and not rewritten
// when the content is already there (runtimes watch the dir and reload on every change).

import { randomBytes } from 'node:crypto'
import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { CNI_NETWORK_NAME_RULE, isCniNetworkName } from '../../mesh/cni-config'

const FILE_MODE = 0o644
const DIR_MODE = 0o755

export class ConflistFileError extends Error {
  readonly code = 'ECONFLISTFILE'
  constructor (readonly op: string, readonly path: string, cause: unknown) {
    super(`${op} ${path}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'ConflistFileError'
  }
}
export const isConflistFileError = (e: unknown): e is ConflistFileError => e instanceof ConflistFileError

/** The file a network's conflist lives in: "10-<name>.conflist" (runtimes load the dir in lexical order). */
export function conflistPath (dir: string, name: string): string {
  // The CNI network name's grammar (mesh/cni-config.ts): it becomes part of a file name.
  if (!isCniNetworkName(name)) throw new ConflistFileError('name', name, new Error(CNI_NETWORK_NAME_RULE))
  return join(dir, `10-${name}.conflist`)
}

export const conflistText = (conflist: unknown): string => JSON.stringify(conflist, null, 2) + '\n'

async function readIfExists (path: string): Promise<{ text: string, mode: number } | undefined> {
  try {
    const [text, st] = await Promise.all([fs.readFile(path, 'utf8'), fs.stat(path)])
    return { text, mode: st.mode & 0o777 }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new ConflistFileError('read', path, e)
  }
}

/** Writes the conflist unless the file already holds exactly this content; returns whether it wrote. */
export async function writeConflist (dir: string, name: string, conflist: unknown): Promise<boolean> {
  const path = conflistPath(dir, name)
  const text = conflistText(conflist)
  const current = await readIfExists(path)
  if (current?.text === text && current.mode === FILE_MODE) return false

  try {
    await fs.mkdir(dir, { recursive: true, mode: DIR_MODE })
  } catch (e) {
    throw new ConflistFileError('create dir', dir, e)
  }
  // A leading dot and a non-config suffix: a runtime scanning the dir never picks the temp file up.
  const tmp = join(dir, `.10-${name}.conflist.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  let step = 'write'
  try {
    const fh = await fs.open(tmp, 'wx', FILE_MODE)
    try {
      await fh.writeFile(text)
      // open() applies the umask; the mode is part of the contract, so set it explicitly.
      await fh.chmod(FILE_MODE)
      await fh.sync()
    } finally {
      await fh.close()
    }
    step = 'rename'
    await fs.rename(tmp, path)
  } catch (e) {
    await fs.rm(tmp, { force: true })
    throw new ConflistFileError(step, step === 'rename' ? path : tmp, e)
  }
  await syncDir(dir)
  return true
}

/** Removes the network's conflist; returns whether a file was there. */
export async function removeConflist (dir: string, name: string): Promise<boolean> {
  const path = conflistPath(dir, name)
  try {
    await fs.unlink(path)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw new ConflistFileError('remove', path, e)
  }
  await syncDir(dir)
  return true
}

// The rename is durable only once the directory entry itself is on disk.
async function syncDir (dir: string): Promise<void> {
  try {
    const fh = await fs.open(dir, 'r')
    try { await fh.sync() } finally { await fh.close() }
  } catch (e) {
    throw new ConflistFileError('sync dir', dir, e)
  }
}

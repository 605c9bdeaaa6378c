// The pod spool: a directory on the node (default /run/podmesh/pods) with one report file per
// pod, written by the podmesh CNI plugin and read by podmeshd. Writes are atomic (temp file in
// the same dir, fsync, rename, fsync of the dir), so a reader sees a whole report or none; the
// plugin needs no daemon to write. The only module that touches the spool's files.
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, watch, writeSync, type FSWatcher } from 'node:fs'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatPodReport, idOfReportFile, isPodReportError, parsePodReport, reportFileName, type PodReport } from '../cni-plugin/pod-report'

const FILE_MODE = 0o644
const DIR_MODE = 0o755

export class PodSpoolError extends Error {
  readonly code = 'EPODSPOOL'
  constructor (readonly op: string, readonly path: string, cause: unknown) {
    super(`${op} ${path}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'PodSpoolError'
  }
}
export const isPodSpoolError = (e: unknown): e is PodSpoolError => e instanceof PodSpoolError

const errno = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code

function syncDir (dir: string): void {
  let fd: number | undefined
  try {
    fd = openSync(dir, 'r')
    fsyncSync(fd)
  } catch (e) {
    throw new PodSpoolError('sync dir', dir, e)
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

/** Writes (or replaces) the pod's report atomically. Synchronous: the plugin is a short-lived process. */
export function writePodReport (dir: string, report: PodReport): void {
  try {
    mkdirSync(dir, { recursive: true, mode: DIR_MODE })
  } catch (e) {
    throw new PodSpoolError('create dir', dir, e)
  }
  const path = join(dir, reportFileName(report.id))
  // A leading dot and no .json: the reader never takes a temp file for a report.
  const tmp = join(dir, `.${report.id}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  let step = 'write'
  try {
    const fd = openSync(tmp, 'wx', FILE_MODE)
    try {
      writeSync(fd, formatPodReport(report))
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    step = 'rename'
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw new PodSpoolError(step, step === 'rename' ? path : tmp, e)
  }
  syncDir(dir)
}

/** Removes the pod's report; returns whether there was one (absent is fine: DEL is idempotent). */
export function removePodReport (dir: string, id: string): boolean {
  const path = join(dir, reportFileName(id))
  try {
    unlinkSync(path)
  } catch (e) {
    if (errno(e) === 'ENOENT') return false
    throw new PodSpoolError('remove', path, e)
  }
  syncDir(dir)
  return true
}

/** The pod's report as the spool holds it; undefined when there is none. Throws PodReportError for a bad file. */
export function readPodReport (dir: string, id: string): PodReport | undefined {
  const path = join(dir, reportFileName(id))
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (e) {
    if (errno(e) === 'ENOENT') return undefined
    throw new PodSpoolError('read', path, e)
  }
  return parsePodReport(path, text)
}

export interface BadPodFile {
  file: string
  problem: string
}

export interface PodSpool {
  reports: PodReport[]
  /** Files that are no report: reported by the caller, skipped, never trusted. */
  bad: BadPodFile[]
}

/**
 * Every report in the spool, by file name order. A missing dir is an empty spool (no pod was
 * added yet); dot files are writes in flight; any other file that is not a valid report is bad.
 */
export async function readPodSpool (dir: string): Promise<PodSpool> {
  let names: string[]
  try {
    names = (await readdir(dir)).sort()
  } catch (e) {
    if (errno(e) === 'ENOENT') return { reports: [], bad: [] }
    throw new PodSpoolError('list', dir, e)
  }
  const out: PodSpool = { reports: [], bad: [] }
  for (const name of names) {
    if (name.startsWith('.')) continue
    const path = join(dir, name)
    if (idOfReportFile(name) === undefined) {
      out.bad.push({ file: path, problem: 'not a pod report name (<container id>.json)' })
      continue
    }
    let text: string
    try {
      text = await readFile(path, 'utf8')
    } catch (e) {
      if (errno(e) === 'ENOENT') continue // removed by a DEL since the listing
      out.bad.push({ file: path, problem: `unreadable: ${(e as Error).message}` })
      continue
    }
    try {
      out.reports.push(parsePodReport(path, text))
    } catch (e) {
      if (!isPodReportError(e)) throw e
      out.bad.push({ file: path, problem: e.message })
    }
  }
  return out
}

export interface SpoolWatch {
  close: () => void
}

/**
 * Calls `onChange` when a file in the spool changes (creating the dir first, so there is one to
 * watch). Events are hints only: the caller re-reads the whole spool. `onError`: the watch
 * ended (the dir was removed, say); the caller watches again later.
 */
export async function watchPodSpool (dir: string, onChange: () => void, onError: (e: PodSpoolError) => void): Promise<SpoolWatch> {
  try {
    await mkdir(dir, { recursive: true, mode: DIR_MODE })
  } catch (e) {
    throw new PodSpoolError('create dir', dir, e)
  }
  let w: FSWatcher
  try {
    w = watch(dir, { persistent: false }, () => onChange())
  } catch (e) {
    throw new PodSpoolError('watch', dir, e)
  }
  w.on('error', e => { w.close(); onError(new PodSpoolError('watch', dir, e)) })
  return { close: () => w.close() }
}

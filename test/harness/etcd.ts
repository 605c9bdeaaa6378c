// A real etcd (Debian etcd-server 3.4) for tests and benchmarks: loopback, random free ports, a
// temp data dir, stopped by PID and removed afterwards. stop()/start() keep the data dir and the
// ports, so tests can simulate an outage. Usable with tap (startEtcd) or alone (EtcdProcess).
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, readFile, open } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
export const ETCD_BIN = process.env.PODMESH_TEST_ETCD ?? '/usr/bin/etcd'
export const ETCDCTL_BIN = process.env.PODMESH_TEST_ETCDCTL ?? '/usr/bin/etcdctl'

export interface EtcdTls {
  caFile: string
  certFile: string
  keyFile: string
  /** Require client certificates signed by caFile. */
  clientCertAuth?: boolean
  /** Client certificate/key used by the harness itself (health checks, etcdctl). */
  clientCertFile?: string
  clientKeyFile?: string
}

export interface EtcdProcessOptions {
  tls?: EtcdTls
  /** Milliseconds to wait for health after each start. Default 20000. */
  startTimeoutMs?: number
}

/** Every etcd this process started, so a crashing test run still kills them by PID. */
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of live) { try { c.kill('SIGKILL') } catch {} }
})

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.unref()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0
      s.close(() => resolve(port))
    })
  })
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export class EtcdProcess {
  readonly dir: string
  readonly dataDir: string
  readonly logFile: string
  readonly opts: EtcdProcessOptions
  clientPort = 0
  peerPort = 0
  private child: ChildProcess | undefined
  private exited: Promise<void> | undefined

  private constructor (dir: string, opts: EtcdProcessOptions) {
    this.dir = dir
    this.dataDir = join(dir, 'data')
    this.logFile = join(dir, 'etcd.log')
    this.opts = opts
  }

  /** Starts a fresh etcd in a new temp dir; call destroy() when done. */
  static async create (opts: EtcdProcessOptions = {}): Promise<EtcdProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'podmesh-etcd-'))
    const e = new EtcdProcess(dir, opts)
    // Ports are picked free but can be taken before etcd binds them: retry with new ones.
    let lastErr: unknown
    for (let attempt = 0; attempt < 4; attempt++) {
      e.clientPort = await freePort()
      e.peerPort = await freePort()
      try {
        await e.start()
        return e
      } catch (err) {
        lastErr = err
        await e.stop()
        await rm(e.dataDir, { recursive: true, force: true })
      }
    }
    await rm(dir, { recursive: true, force: true })
    throw lastErr
  }

  get scheme (): string { return this.opts.tls !== undefined ? 'https' : 'http' }
  get endpoint (): string { return `${this.scheme}://127.0.0.1:${this.clientPort}` }
  get endpoints (): string[] { return [this.endpoint] }
  get pid (): number | undefined { return this.child?.pid }
  get running (): boolean { return this.child !== undefined }

  /** (Re)starts etcd on the same data dir and ports and waits until it is healthy. */
  async start (): Promise<void> {
    if (this.child !== undefined) return
    const peer = `http://127.0.0.1:${this.peerPort}`
    const args = [
      '--name', 'test',
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`,
      '--initial-cluster-state', 'new',
      // Short raft timings: quicker leader election at (re)start and a lower minimum lease TTL.
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--logger', 'zap',
      '--log-outputs', 'stderr'
    ]
    const tls = this.opts.tls
    if (tls !== undefined) {
      args.push('--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile)
      if (tls.clientCertAuth === true) args.push('--client-cert-auth')
    }
    const log = await open(this.logFile, 'a')
    const child = spawn(ETCD_BIN, args, { stdio: ['ignore', log.fd, log.fd] })
    await log.close()
    live.add(child)
    this.child = child
    let exitCode: number | null = null
    this.exited = new Promise(resolve => child.once('exit', code => {
      exitCode = code
      live.delete(child)
      if (this.child === child) this.child = undefined
      resolve()
    }))
    const deadline = Date.now() + (this.opts.startTimeoutMs ?? 20_000)
    while (Date.now() < deadline) {
      if (this.child !== child) {
        throw new Error(`etcd exited with code ${String(exitCode)} during start; log tail:\n${await this.logTail()}`)
      }
      if (await this.healthy()) return
      await sleep(50)
    }
    throw new Error(`etcd not healthy after ${this.opts.startTimeoutMs ?? 20_000} ms; log tail:\n${await this.logTail()}`)
  }

  /** Stops etcd (SIGTERM, SIGKILL after 5 s) and waits for it to exit; keeps the data dir. */
  async stop (): Promise<void> {
    const child = this.child
    if (child === undefined) return
    const exited = this.exited
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  /** Stops etcd and removes its temp dir. */
  async destroy (): Promise<void> {
    await this.stop()
    await rm(this.dir, { recursive: true, force: true })
  }

  /** Saves a snapshot of the running etcd to `file` (etcdctl snapshot save). */
  async snapshot (file: string): Promise<void> {
    await this.etcdctl(['snapshot', 'save', file])
  }

  /**
   * What an operator's restore does: stop etcd, replace its data dir with the snapshot
   * (etcdctl snapshot restore) and start it again on the same endpoint; without a snapshot, an
   * empty etcd replaces it.
   */
  async restore (file?: string): Promise<void> {
    await this.stop()
    await rm(this.dataDir, { recursive: true, force: true })
    if (file !== undefined) {
      const peer = `http://127.0.0.1:${this.peerPort}`
      await this.etcdctl(['snapshot', 'restore', file, '--data-dir', this.dataDir, '--name', 'test',
        '--initial-cluster', `test=${peer}`, '--initial-advertise-peer-urls', peer])
    }
    await this.start()
  }

  /** Compacts the history up to `rev` (physically, so old revisions are really gone). */
  async compact (rev: number | bigint | string): Promise<void> {
    await this.etcdctl(['compaction', '--physical', String(rev)])
  }

  /** Runs etcdctl (API v3) against this etcd; resolves to stdout. */
  async etcdctl (args: string[]): Promise<string> {
    const tls = this.opts.tls
    const extra = tls === undefined
      ? []
      : ['--cacert', tls.caFile, ...(tls.clientCertFile !== undefined ? ['--cert', tls.clientCertFile, '--key', tls.clientKeyFile ?? ''] : [])]
    const { stdout } = await run(ETCDCTL_BIN, ['--endpoints', this.endpoint, ...extra, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      maxBuffer: 64 * 1024 * 1024
    })
    return stdout
  }

  async logTail (lines = 30): Promise<string> {
    try {
      return (await readFile(this.logFile, 'utf8')).split('\n').slice(-lines).join('\n')
    } catch {
      return '(no log)'
    }
  }

  private async healthy (): Promise<boolean> {
    const tls = this.opts.tls
    return await new Promise(resolve => {
      const opts = {
        host: '127.0.0.1',
        port: this.clientPort,
        path: '/health',
        timeout: 1000,
        ...(tls !== undefined
          ? {
              ca: readFileSyncOrEmpty(tls.caFile),
              ...(tls.clientCertFile !== undefined ? { cert: readFileSyncOrEmpty(tls.clientCertFile), key: readFileSyncOrEmpty(tls.clientKeyFile ?? '') } : {})
            }
          : {})
      }
      const req = (tls !== undefined ? httpsRequest : httpRequest)(opts, res => {
        let body = ''
        res.on('data', (c: Buffer) => { body += c.toString() })
        res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')))
      })
      req.on('error', () => resolve(false))
      req.on('timeout', () => { req.destroy(); resolve(false) })
      req.end()
    })
  }
}

function readFileSyncOrEmpty (file: string): Buffer {
  try { return readFileSync(file) } catch { return Buffer.alloc(0) }
}

/** The bits of a tap Test the harness needs (keeps this file usable without tap). */
export interface Teardownable {
  teardown: (fn: () => unknown) => void
}

/** Starts an etcd for one test (file); it is stopped and its dir removed at t's teardown. */
export async function startEtcd (t: Teardownable, opts: EtcdProcessOptions = {}): Promise<EtcdProcess> {
  const e = await EtcdProcess.create(opts)
  t.teardown(async () => await e.destroy())
  return e
}

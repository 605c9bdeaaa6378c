// A real 3-member etcd cluster (Debian etcd 3.4) on loopback for failover tests: random free
// ports, one temp dir, every member's PID tracked and killed at teardown. A member can be
// SIGKILLed and started again on its data dir, or frozen (SIGSTOP): a frozen member keeps its
// TCP connections open and answers nothing, which is what a client sees of a partitioned one.
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { mkdtemp, open, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ETCD_BIN, ETCDCTL_BIN, type Teardownable } from './etcd'

const run = promisify(execFile)
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

const live = new Set<ChildProcess>()
process.on('exit', () => { for (const c of live) { try { c.kill('SIGKILL') } catch {} } })

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

interface Member { name: string, client: number, peer: number, child?: ChildProcess, frozen: boolean }

export class EtcdCluster {
  private constructor (readonly dir: string, readonly members: Member[]) {}

  static async create (t: Teardownable, size = 3): Promise<EtcdCluster> {
    // Ports are picked free but another process can bind one before etcd does (a parallel test,
    // an outgoing connection's ephemeral port): that member exits at once. A cluster that starts
    // with a member missing is not the one the test asked for (a client pointed at the dead
    // member waits forever), so start again on new ports.
    let lastErr: unknown
    for (let attempt = 0; attempt < 4; attempt++) {
      const dir = await mkdtemp(join(tmpdir(), 'podmesh-etcd-cluster-'))
      const members: Member[] = []
      for (let i = 0; i < size; i++) members.push({ name: `m${i}`, client: await freePort(), peer: await freePort(), frozen: false })
      const c = new EtcdCluster(dir, members)
      try {
        await Promise.all(members.map(async (_, i) => { await c.start(i) }))
        await c.waitHealthy(30_000, { all: true })
        t.teardown(async () => await c.destroy())
        return c
      } catch (e) {
        lastErr = e
        await c.destroy()
      }
    }
    throw lastErr
  }

  endpoint (i: number): string { return `http://127.0.0.1:${this.members[i]?.client ?? 0}` }
  get endpoints (): string[] { return this.members.map((_, i) => this.endpoint(i)) }
  pid (i: number): number | undefined { return this.members[i]?.child?.pid }

  /** Starts member i (again) on its data dir. */
  async start (i: number): Promise<void> {
    const m = this.member(i)
    if (m.child !== undefined) return
    const cluster = this.members.map(x => `${x.name}=http://127.0.0.1:${x.peer}`).join(',')
    const log = await open(join(this.dir, `${m.name}.log`), 'a')
    const child = spawn(ETCD_BIN, [
      '--name', m.name,
      '--data-dir', join(this.dir, m.name),
      '--listen-client-urls', this.endpoint(i),
      '--advertise-client-urls', this.endpoint(i),
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', cluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'podmesh-test',
      // etcd's defaults (100 ms heartbeat, 1 s election): failover as a production cluster does it.
      '--logger', 'zap', '--log-outputs', 'stderr'
    ], { stdio: ['ignore', log.fd, log.fd] })
    await log.close()
    live.add(child)
    m.child = child
    child.once('exit', () => { live.delete(child); if (m.child === child) m.child = undefined })
  }

  /** SIGKILL: no goodbye to the peers or the clients. */
  async kill (i: number): Promise<void> {
    const m = this.member(i)
    const child = m.child
    if (child === undefined) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    if (m.frozen) { child.kill('SIGCONT'); m.frozen = false }
    child.kill('SIGKILL')
    await exited
  }

  /** Freeze (partition) or thaw member i. */
  freeze (i: number, on: boolean): void {
    const m = this.member(i)
    m.child?.kill(on ? 'SIGSTOP' : 'SIGCONT')
    m.frozen = on
  }

  /** The index of the current leader, asked of the members that run and are not frozen. */
  async leader (): Promise<number> {
    const eps = this.members.map((m, i) => (m.child !== undefined && !m.frozen ? this.endpoint(i) : '')).filter(e => e !== '')
    const { stdout } = await run(ETCDCTL_BIN, ['--endpoints', eps.join(','), '--command-timeout=2s', 'endpoint', 'status', '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } })
    const st = JSON.parse(stdout) as Array<{ Endpoint: string, Status: { header: { member_id: number }, leader: number } }>
    const lead = st.find(s => s.Status.header.member_id === s.Status.leader)
    const i = lead === undefined ? -1 : this.endpoints.indexOf(lead.Endpoint)
    if (i < 0) throw new Error(`no leader among ${eps.join(',')}: ${stdout}`)
    return i
  }

  /** Waits until a leader is elected and every running member answers. */
  async waitHealthy (timeoutMs = 30_000, o: { all?: boolean } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const gone = this.members.filter(m => m.child === undefined).map(m => m.name)
      if (o.all === true && gone.length > 0) {
        const tails = await Promise.all(gone.map(async n => `${n}: ${(await readFile(join(this.dir, `${n}.log`), 'utf8').catch(() => '')).split('\n').slice(-3).join(' | ')}`))
        throw new Error(`etcd member ${gone.join(', ')} exited during start (a port taken?): ${tails.join('; ')}`)
      }
      try {
        const eps = this.members.map((m, i) => (m.child !== undefined && !m.frozen ? this.endpoint(i) : '')).filter(e => e !== '')
        await run(ETCDCTL_BIN, ['--endpoints', eps.join(','), '--command-timeout=2s', 'endpoint', 'health'], { env: { ...process.env, ETCDCTL_API: '3' } })
        await this.leader()
        return
      } catch (e) {
        if (Date.now() > deadline) throw e
        await sleep(100)
      }
    }
  }

  async destroy (): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.kill(i)
    await rm(this.dir, { recursive: true, force: true })
  }

  private member (i: number): Member {
    const m = this.members[i]
    if (m === undefined) throw new Error(`no member ${i}`)
    return m
  }
}

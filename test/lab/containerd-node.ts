// A private containerd on a lab node, for driving a real container runtime (Debian's containerd
// 1.6, `ctr run --cni`) against the conflist podmeshd wrote. It owns everything it starts:
// its own --root/--state/socket/config in a per-run dir, and a private mount namespace inside
// the node's network namespace where
//   - /etc, /opt, /var/lib and /run are overlays whose writes land in a tmpfs (ctr's fixed conf
//     dir /etc/cni/net.d, libcni's result cache /var/lib/cni, the shims' sockets under
//     /run/containerd),
//   - /etc/cni/net.d is the node's conflist dir,
//   - the plugin dirs ctr searches are laid out as `plugins` says. Debian's ctr searches
//     /opt/cni/bin, then /usr/lib/cni (Debian's go-cni adds its own dir; upstream's searches
//     /opt/cni/bin only): 'debian' leaves them as installed (no /opt/cni/bin, plugins in
//     /usr/lib/cni); 'opt-cni-bin' also shows /usr/lib/cni's plugins at /opt/cni/bin, read-only
//     (the "link them" setup upstream binaries need); 'none' hides /usr/lib/cni behind an empty
//     dir and makes no /opt/cni/bin, so ctr finds no plugin.
// The host's /etc/cni, /opt/cni and /var/lib/cni are never written. The namespace is entered
// with nsenter --net (not `ip netns exec`, whose fresh /sys hides the cgroup mounts runc needs).
// Its containerd namespace is per run: runc names the containers' cgroups /<namespace>/<id> in
// the host's cgroup tree, and destroy() removes those (empty) dirs. destroy() ends its
// containers (also one a failed `ctr run` left created), shims and containerd, by PID; the
// mounts go with the mount namespace.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { isShError, sh } from '../harness/netns'
import { waitForValue } from '../harness/wait'
import { LAB_IMAGE } from './oci-image'

/** Native snapshots are plain directories: nothing mounted that outlives a failed run. */
const SNAPSHOTTER = 'native'

export interface ContainerdNodeOptions {
  /** The lab node's network namespace (a name under /run/netns). */
  netns: string
  /** containerd namespace for the containers, unique per run: it names their cgroups on the host. */
  namespace: string
  /** A per-run directory this containerd may own entirely. */
  dir: string
  /** The directory podmeshd writes its conflist to: mounted as /etc/cni/net.d. */
  confDir: string
  /** Where ctr finds the CNI plugins (see the top comment); default 'debian'. */
  plugins?: 'debian' | 'opt-cni-bin' | 'none'
}

export interface LabContainer {
  id: string
  /** The task's PID in the host's PID namespace: /proc/<pid>/ns/net is its network namespace. */
  pid: number
  /** The foreground `ctr run`: on the task's end it runs the CNI DEL and removes the container. */
  run: ChildProcess
  output: () => string
}

export class ContainerdError extends Error {
  readonly code = 'ECONTAINERD'
  constructor (readonly op: string, message: string, options?: { cause?: unknown }) {
    super(`containerd ${op}: ${message}`, options)
    this.name = 'ContainerdError'
  }
}

/** Whether `p` settled within `ms`; the timer is cleared either way, so it never holds the process open. */
async function settlesWithin (p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>(resolve => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([p.then(() => true), late])
  } finally {
    clearTimeout(timer)
  }
}
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** runc's cgroup dirs for the namespace (/sys/fs/cgroup/<controller>/<namespace>/<id>), once empty. */
function removeCgroups (namespace: string): void {
  const root = '/sys/fs/cgroup'
  const controllers = [root, ...readdirSync(root, { withFileTypes: true }).filter(d => d.isDirectory()).map(d => join(root, d.name))]
  for (const c of controllers) {
    const dir = join(c, namespace)
    if (!existsSync(dir)) continue
    for (const leaf of readdirSync(dir, { withFileTypes: true }).filter(d => d.isDirectory())) {
      try { rmdirSync(join(dir, leaf.name)) } catch { /* still in use: a process we could not end */ }
    }
    try { rmdirSync(dir) } catch { /* still in use */ }
  }
}

const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

export class ContainerdNode {
  private proc: ChildProcess | undefined
  private readonly containers = new Map<string, LabContainer>()
  private execSeq = 0

  constructor (readonly opts: ContainerdNodeOptions) {}

  get socket (): string { return join(this.opts.dir, 'containerd.sock') }
  get configPath (): string { return join(this.opts.dir, 'config.toml') }
  get logFile (): string { return join(this.opts.dir, 'containerd.log') }

  /** The config: everything under the run's dir, the CRI plugin off (ctr does not use it). */
  private configText (): string {
    const d = this.opts.dir
    return [
      'version = 2',
      `root = ${JSON.stringify(join(d, 'root'))}`,
      `state = ${JSON.stringify(join(d, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(this.socket)}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(join(d, 'opt'))}`,
      ''
    ].join('\n')
  }

  /** The private mount namespace's setup, then containerd in its place (same PID). */
  private startScript (): string {
    const scratch = join(this.opts.dir, 'scratch')
    const q = (s: string): string => `'${s.replace(/'/g, "'\\''")}'`
    return [
      'set -eu',
      `mount -t tmpfs podmesh-lab ${q(scratch)}`,
      'for d in etc opt var/lib run; do',
      `  mkdir -p ${q(scratch)}/$d/upper ${q(scratch)}/$d/work`,
      `  mount -t overlay podmesh-lab -o "lowerdir=/$d,upperdir=${scratch}/$d/upper,workdir=${scratch}/$d/work" "/$d"`,
      'done',
      'mkdir -p /etc/cni/net.d',
      `mount --bind ${q(this.opts.confDir)} /etc/cni/net.d`,
      ...this.pluginMounts(q),
      `exec containerd --config ${q(this.configPath)}`,
      ''
    ].join('\n')
  }

  private pluginMounts (q: (s: string) => string): string[] {
    const plugins = this.opts.plugins ?? 'debian'
    // A host that has /opt/cni: an empty tmpfs over it (in this namespace), never a removal.
    const noOptCni = 'if [ -d /opt/cni ]; then mount -t tmpfs podmesh-lab /opt/cni; fi'
    if (plugins === 'debian') return [noOptCni]
    if (plugins === 'opt-cni-bin') return ['mkdir -p /opt/cni/bin', 'mount --bind /usr/lib/cni /opt/cni/bin', 'mount -o remount,bind,ro /opt/cni/bin']
    const empty = join(this.opts.dir, 'scratch', 'no-plugins')
    return [noOptCni, `mkdir -p ${q(empty)}`, `mount --bind ${q(empty)} /usr/lib/cni`]
  }

  async start (): Promise<void> {
    mkdirSync(join(this.opts.dir, 'scratch'), { recursive: true })
    mkdirSync(this.opts.confDir, { recursive: true })
    writeFileSync(this.configPath, this.configText())
    const script = join(this.opts.dir, 'start.sh')
    writeFileSync(script, this.startScript())
    const fd = openSync(this.logFile, 'a')
    this.proc = spawn('nsenter', [`--net=/run/netns/${this.opts.netns}`, 'unshare', '--mount', '--propagation', 'private', 'sh', script],
      { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    this.proc.on('error', () => { /* its exit code and log say why; start() reports them */ })
    await waitForValue(`containerd in ${this.opts.netns} answering on ${this.socket}`, 60_000, async () => {
      if (this.proc?.exitCode !== null || this.proc.signalCode !== null) {
        throw new ContainerdError('start', `exited (${this.proc?.exitCode ?? this.proc?.signalCode}): ${this.logTail()}`)
      }
      return await this.ctr(['version'], 10_000).then(() => true, () => false)
    }, { everyMs: 200, stopOn: e => e instanceof ContainerdError })
  }

  logTail (lines = 15): string {
    try { return readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n') } catch { return '(no log)' }
  }

  /** `ctr` in containerd's namespaces (mount: its /opt/cni/bin, /etc/cni/net.d; net: the node's). */
  async ctr (args: readonly string[], timeoutMs = 60_000): Promise<string> {
    const pid = this.proc?.pid
    if (pid === undefined) throw new ContainerdError('ctr', 'containerd is not started')
    return (await sh('nsenter', ['-t', String(pid), '-m', '-n', 'ctr', '--address', this.socket, '-n', this.opts.namespace, ...args], { timeoutMs })).stdout
  }

  /**
   * Any command in containerd's namespaces, where it sees what containerd and ctr see; resolves
   * with its exit code and output whatever the code (podmeshctl doctor exits 1 on a FAIL).
   */
  async inNamespaces (args: readonly string[], timeoutMs = 60_000): Promise<{ code: number | null, stdout: string, stderr: string }> {
    const pid = this.proc?.pid
    if (pid === undefined) throw new ContainerdError('exec', 'containerd is not started')
    return await new Promise(resolve => {
      execFile('nsenter', ['-t', String(pid), '-m', '-n', ...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null
        resolve({ code, stdout, stderr })
      })
    })
  }

  async importImage (tarball: string): Promise<void> {
    await this.ctr(['images', 'import', '--snapshotter', SNAPSHOTTER, tarball], 120_000)
  }

  /**
   * `ctr run --rm [--cni] <lab image> <id> /bin/busybox <args>` in the foreground, as an operator
   * runs it; resolves once the task runs (with --cni, ctr has run the conflist's ADD by then).
   */
  async run (id: string, args: readonly string[], o: { cni: boolean }): Promise<LabContainer> {
    const pid = this.proc?.pid
    if (pid === undefined) throw new ContainerdError('run', 'containerd is not started')
    const run = spawn('nsenter', ['-t', String(pid), '-m', '-n', 'ctr', '--address', this.socket, '-n', this.opts.namespace,
      'run', '--rm', ...(o.cni ? ['--cni'] : []), '--snapshotter', SNAPSHOTTER, LAB_IMAGE, id, '/bin/busybox', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    run.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d })
    run.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d })
    run.on('error', e => { out += `spawn: ${e.message}` })
    let closed = false
    run.on('close', () => { closed = true })
    let taskPid: number
    try {
      taskPid = await waitForValue(`container ${id} running`, 60_000, async () => {
        if (closed) throw new ContainerdError('run', `ctr run ${id} ended: ${out.trim()}`)
        return (await this.tasks()).find(r => r.id === id && r.status === 'RUNNING')?.pid
      }, { everyMs: 200, stopOn: e => e instanceof ContainerdError })
    } catch (e) {
      // A ctr run that failed after creating the task (a CNI ADD error) leaves it created: its
      // `runc init` would outlive everything else.
      await this.remove(id)
      throw e
    }
    const c: LabContainer = { id, pid: taskPid, run, output: () => out }
    this.containers.set(id, c)
    return c
  }

  /** `ctr tasks ls`: id, host PID, status. */
  private async tasks (): Promise<Array<{ id: string, pid: number, status: string }>> {
    const rows = (await this.ctr(['tasks', 'ls'], 10_000)).trim().split('\n').slice(1)
    return rows.map(l => l.trim().split(/\s+/)).filter(r => r.length >= 3).map(r => ({ id: r[0] as string, pid: Number(r[1]), status: r[2] as string }))
  }

  /** Kills and deletes the task and the container, whatever state they are in; never throws. */
  private async remove (id: string): Promise<void> {
    await this.ctr(['tasks', 'kill', '-s', 'KILL', id], 20_000).catch(() => undefined)
    await this.ctr(['tasks', 'delete', '--force', id], 20_000).catch(() => undefined)
    await this.ctr(['containers', 'delete', id], 20_000).catch(() => undefined)
  }

  /** Runs busybox `args` inside the container; resolves to its stdout, throws on a non-zero exit. */
  async exec (id: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
    return await this.ctr(['tasks', 'exec', '--exec-id', `x${++this.execSeq}`, id, '/bin/busybox', ...args], timeoutMs)
  }

  /** Pings `ip` from inside the container; true on a reply (ping's exit status says so). */
  async ping (id: string, ip: string, count = 3): Promise<boolean> {
    try {
      await this.exec(id, ['ping', '-c', String(count), '-W', '2', ip])
      return true
    } catch (e) {
      if (isShError(e)) return false
      throw e
    }
  }

  /** The container's global addresses on eth0, without prefix lengths. */
  async addresses (id: string): Promise<string[]> {
    const out = await this.exec(id, ['ip', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])
    return [...out.matchAll(/\binet6? ([0-9a-f.:]+)\//g)].map(m => m[1] as string)
  }

  /**
   * Kills the task; the foreground ctr then runs the CNI DEL and removes the container. Resolves
   * when that ctr has ended; throws when it did not within the timeout.
   */
  async stop (id: string, timeoutMs = 60_000): Promise<void> {
    const c = this.containers.get(id)
    if (c === undefined) return
    const ended = new Promise<void>(resolve => {
      if (c.run.exitCode !== null || c.run.signalCode !== null) resolve()
      else c.run.once('close', () => resolve())
    })
    await this.ctr(['tasks', 'kill', '-s', 'KILL', id], 30_000).catch(() => { /* already gone: the wait below says */ })
    if (!await settlesWithin(ended, timeoutMs)) throw new ContainerdError('stop', `ctr run ${id} still running ${timeoutMs} ms after the kill: ${c.output().trim()}`)
    this.containers.delete(id)
  }

  /** Ends containers, containerd, its shims and anything left of them, by PID; never throws. */
  async destroy (): Promise<void> {
    if (this.proc === undefined) return
    for (const id of [...this.containers.keys()]) await this.stop(id, 20_000).catch(() => undefined)
    const pids = [...this.containers.values()].flatMap(c => [c.pid, c.run.pid ?? 0])
    // Whatever else containerd still has (a task a failed run left): by its API first, then by PID.
    const left = await this.tasks().catch(() => [])
    pids.push(...left.map(r => r.pid))
    for (const r of left) await this.remove(r.id)
    const ids = (await this.ctr(['containers', 'ls', '-q'], 10_000).catch(() => '')).split('\n').filter(x => x !== '')
    for (const id of ids) await this.remove(id)
    const main = this.proc
    if (main !== undefined && main.exitCode === null && main.signalCode === null) {
      const exited = new Promise(resolve => main.once('exit', resolve))
      main.kill('SIGTERM')
      await settlesWithin(exited, 10_000)
      if (main.exitCode === null && main.signalCode === null) main.kill('SIGKILL')
    }
    // Shims detach from containerd: found by the socket only this containerd has.
    const shims = await sh('pgrep', ['-f', `^/usr/bin/containerd-shim-runc-v2 .*-address ${this.socket}$`]).then(r => r.stdout, () => '')
    pids.push(...shims.split('\n').map(Number))
    for (const pid of pids) if (pid > 0 && alive(pid)) try { process.kill(pid, 'SIGKILL') } catch { /* gone meanwhile */ }
    this.containers.clear()
    await sleep(200)
    removeCgroups(this.opts.namespace)
  }
}

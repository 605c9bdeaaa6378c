// The VM lab (issue #14): Debian bookworm VMs under QEMU (TCG) booted from the image that
// scripts/vm-image builds, the stock Debian kernel with its wireguard.ko and systemd as PID 1,
// joined by a bridge inside a network namespace of the host made for the run. podmesh goes in
// with apt from its .deb and runs as the packaged systemd unit, configured the way the README's
// systemd section tells an operator to; etcd is Debian's etcd-server on node-1.
//
// Everything belongs to one run: the namespace (pmvm<hex>), its taps, the QEMU processes (by
// their pidfiles, checked against the run dir before any signal), the ssh control masters and a
// run dir under /var/tmp (qcow2 overlays over the cached base image, console logs, the share
// the VMs mount read-only over 9p). A state file, written before anything is made, lets `down`
// remove all of it, also after a failed `up`.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { waitForValue } from '../harness/wait'

export const REPO = resolve(__dirname, '..', '..')
const GUEST_DIR = join(__dirname, 'guest')

/** The lab's address plan; scripts/vm-image writes one systemd-networkd file per MAC of it. */
export const vmAddress = (n: number): { ip: string, ip6: string, mac: string } =>
  ({ ip: `192.0.2.1${n}`, ip6: `2001:db8::1${n}`, mac: `52:54:00:00:02:1${n}` })
export const BRIDGE_IP = '192.0.2.1'
export const BRIDGE_IP6 = '2001:db8::1'
export const ETCD_URL = `http://${vmAddress(1).ip}:2379`
export const CLUSTER_PREFIX = '/podmesh/default/'
/** README step 4: podmeshctl reads the PODMESH_ETCD_* settings of the env file. */
export const ENV = 'set -a && . /etc/default/podmeshd && set +a'
/** README step 5, once per cluster on the first node; with service ranges (issue #11, the `services` check). */
export const SERVICE_CIDRS = ['10.96.0.0/16', 'fd00:10:96::/112'] as const
/** The labels of each node's first pod, which the `services` check selects. */
export const WEB_LABELS = 'app=web'
const INIT = `podmeshctl init --ipv4-cidr 10.244.0.0/16 --ipv6-cidr fd00:10:244::/56 ${SERVICE_CIDRS.map(c => `--service-cidr ${c}`).join(' ')}`

export interface Outcome { code: number, stdout: string, stderr: string }

export class VmLabError extends Error {
  readonly code = 'EVMLAB'
  /** Waiting longer cannot help (a VM's QEMU is gone): waitFor gives up at once. */
  readonly fatal: boolean
  constructor (message: string, options?: { cause?: unknown, fatal?: boolean }) {
    super(message, options)
    this.name = 'VmLabError'
    this.fatal = options?.fatal === true
  }
}
export const isVmLabError = (e: unknown): e is VmLabError => e instanceof VmLabError

/** Runs a program (no shell) and collects its output; never throws for a non-zero exit. */
export async function run (cmd: string, args: readonly string[], opts: { input?: string, timeoutMs?: number } = {}): Promise<Outcome> {
  return await new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, [...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, opts.timeoutMs ?? 60_000)
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', e => { clearTimeout(timer); reject(e) })
    child.on('close', code => {
      clearTimeout(timer)
      resolvePromise({ code: code ?? -1, stdout, stderr: timedOut ? `${stderr}\n(killed after ${opts.timeoutMs ?? 60_000} ms)` : stderr })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

/**
 * Runs a program with no pipes (a daemonizing child such as an ssh control master would hold
 * them open) and resolves to whether it exited 0.
 */
export async function exitsZero (cmd: string, args: readonly string[], timeoutMs: number): Promise<boolean> {
  return await new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, [...args], { stdio: 'ignore' })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', e => { clearTimeout(timer); reject(e) })
    child.on('exit', code => { clearTimeout(timer); resolvePromise(code === 0) })
  })
}

/** Like run, but a non-zero exit is a VmLabError naming the command and its stderr. */
export async function must (cmd: string, args: readonly string[], opts: { input?: string, timeoutMs?: number } = {}): Promise<string> {
  const o = await run(cmd, args, opts)
  if (o.code !== 0) throw new VmLabError(`${[cmd, ...args].join(' ').slice(0, 200)}: exit ${o.code}: ${(o.stderr.trim() || o.stdout.trim()).slice(-2000)}`)
  return o.stdout
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** Polls `check` until it yields a value (not undefined/false); a throw counts as not yet, unless fatal. */
export async function waitFor<T> (what: string, timeoutMs: number, check: () => Promise<T | undefined | false>, everyMs = 500): Promise<T> {
  return await waitForValue(what, timeoutMs, check, { everyMs, stopOn: e => isVmLabError(e) && e.fatal, timeoutError: m => new VmLabError(m) })
}

export interface VmState { n: number, name: string, ip: string, ip6: string, mac: string, tap: string, memoryMb: number, pid?: number }
export interface PodState { node: string, name: string, ips: string[] }
export interface LabState {
  v: 1
  id: string
  ns: string
  dir: string
  image: string
  vms: VmState[]
  pods: PodState[]
  /** Seconds each phase of `up` took, and per VM its boot (QEMU start → ssh) and start (systemctl). */
  timings: Record<string, number>
  createdAt: string
}

export interface UpOptions { stateFile: string, image: string, deb: string, nodes?: number, memoryMb?: number, podsPerNode?: number, log?: (line: string) => void }

/** What is in the image dir scripts/vm-image prints. */
function imageFiles (image: string): { disk: string, kernel: string, initrd: string, key: string } {
  const files = { disk: join(image, 'base.img'), kernel: join(image, 'vmlinuz'), initrd: join(image, 'initrd.img'), key: join(image, 'lab-key') }
  for (const f of Object.values(files)) if (!existsSync(f)) throw new VmLabError(`${f} missing: run scripts/vm-image`)
  return files
}

export class VmLab {
  private constructor (readonly state: LabState, readonly stateFile: string) {}

  static load (stateFile: string): VmLab {
    if (!existsSync(stateFile)) throw new VmLabError(`no VM lab state at ${stateFile}: nothing is up (scripts/vm-lab up)`)
    return new VmLab(JSON.parse(readFileSync(stateFile, 'utf8')) as LabState, stateFile)
  }

  get vms (): VmState[] { return this.state.vms }
  vm (n: number): VmState {
    const v = this.state.vms.find(x => x.n === n)
    if (v === undefined) throw new VmLabError(`no node-${n} in this lab`)
    return v
  }

  private get image (): ReturnType<typeof imageFiles> { return imageFiles(this.state.image) }
  save (): void { writeFileSync(this.stateFile, JSON.stringify(this.state, null, 2)) }

  /**
   * Boots the VMs, installs podmesh from its .deb, starts etcd and podmeshd, adds pods. On a
   * failure the lab is left for `down` (the state file says what exists) and the error names
   * the step and the VM; the console logs stay in the run dir until then.
   */
  static async up (o: UpOptions): Promise<VmLab> {
    const log = o.log ?? (() => {})
    if (existsSync(o.stateFile)) {
      throw new VmLabError(`a VM lab is already up (${o.stateFile}); run scripts/vm-lab down first, or pass another --state`)
    }
    imageFiles(o.image) // fails early, naming what is missing
    if (!/^podmesh_.*_amd64\.deb$/.test(basename(o.deb)) || !existsSync(o.deb)) throw new VmLabError(`${o.deb}: not a podmesh_<version>_amd64.deb`)
    const id = `pmvm${randomBytes(2).toString('hex')}`
    const dir = mkdtempSync(`/var/tmp/podmesh-vm-${id}-`)
    const nodes = o.nodes ?? 3
    const state: LabState = {
      v: 1,
      id,
      ns: id,
      dir,
      image: o.image,
      vms: Array.from({ length: nodes }, (_, i) => ({ n: i + 1, name: `node-${i + 1}`, ...vmAddress(i + 1), tap: `tap${i + 1}`, memoryMb: o.memoryMb ?? 1024 })),
      pods: [],
      timings: {},
      createdAt: new Date().toISOString()
    }
    mkdirSync(dirname(o.stateFile), { recursive: true })
    const lab = new VmLab(state, o.stateFile)
    lab.save()
    const phase = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
      const t0 = Date.now()
      const r = await fn()
      state.timings[name] = (Date.now() - t0) / 1000
      lab.save()
      log(`${name}: ${state.timings[name]?.toFixed(1)} s`)
      return r
    }

    await phase('network', async () => await lab.makeNetwork())
    // What the VMs read over 9p: the package and the lab's guest helpers.
    const share = join(dir, 'share')
    mkdirSync(share)
    copyFileSync(o.deb, join(share, basename(o.deb)))
    for (const f of readdirSync(GUEST_DIR)) copyFileSync(join(GUEST_DIR, f), join(share, f))

    await phase('boot', async () => {
      for (const vm of state.vms) await lab.startQemu(vm)
      lab.save()
      await Promise.all(state.vms.map(async vm => {
        const t0 = Date.now()
        await lab.waitSsh(vm, 180_000)
        state.timings[`boot ${vm.name}`] = (Date.now() - t0) / 1000
      }))
    })
    // From here on the README's "Install as a systemd service", step by step, on every node.
    const all = async (fn: (vm: VmState) => Promise<void>): Promise<void> => { await Promise.all(state.vms.map(fn)) }
    const first = state.vms[0] as VmState
    await phase('install', async () => await all(async vm => await lab.installPodmesh(vm)))       // step 2
    await phase('etcd', async () => await lab.startEtcd(first))                                     // the lab's etcd
    await phase('configure', async () => await all(async vm => await lab.configurePodmesh(vm)))   // step 3
    await phase('init', async () => { await lab.ssh(first, `${ENV} && ${INIT}`, { timeoutMs: 120_000 }) }) // steps 4, 5
    await phase('start', async () => await all(async vm => {                                         // step 6
      const t0 = Date.now()
      await lab.startPodmesh(vm)
      state.timings[`start ${vm.name}`] = (Date.now() - t0) / 1000
    }))
    await phase('verify', async () => await all(async vm => await lab.verifyNode(vm)))            // step 7
    await phase('pods', async () => {
      const pods = await Promise.all(state.vms.map(async vm => {
        const made: PodState[] = []
        // p1 of every node is labelled app=web: the `services` check puts a service in front of them.
        for (let j = 1; j <= (o.podsPerNode ?? 2); j++) made.push(await lab.addPod(vm, `p${j}`, j === 1 ? WEB_LABELS : undefined))
        return made
      }))
      state.pods = pods.flat()
    })
    return lab
  }

  private async makeNetwork (): Promise<void> {
    const { ns } = this.state
    await must('ip', ['netns', 'add', ns])
    const ipn = async (...args: string[]): Promise<string> => await must('ip', ['-n', ns, ...args])
    await ipn('link', 'set', 'lo', 'up')
    await ipn('link', 'add', 'br0', 'type', 'bridge')
    await ipn('addr', 'add', `${BRIDGE_IP}/24`, 'dev', 'br0')
    await ipn('addr', 'add', `${BRIDGE_IP6}/64`, 'dev', 'br0', 'nodad')
    await ipn('link', 'set', 'br0', 'up')
    for (const vm of this.state.vms) {
      await ipn('tuntap', 'add', 'dev', vm.tap, 'mode', 'tap')
      await ipn('link', 'set', vm.tap, 'master', 'br0', 'up')
    }
  }

  private pidFile (vm: VmState): string { return join(this.state.dir, `${vm.name}.pid`) }
  consoleLog (vm: VmState): string { return join(this.state.dir, `${vm.name}.console.log`) }

  private async startQemu (vm: VmState): Promise<void> {
    const { dir, ns } = this.state
    const img = this.image
    const overlay = join(dir, `${vm.name}.qcow2`)
    await must('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', img.disk, '-F', 'raw', overlay])
    // TCG: KVM guests hang at boot on this kind of machine. -cpu max gives Node.js the SSE4/AVX
    // it expects; romfile= spares the iPXE ROM (not installed with --no-install-recommends);
    // `quiet`: every console line costs TCG time. tb-size: TCG's translation cache defaults to
    // 1 GiB per VM; a quarter holds what these guests run.
    await must('ip', ['netns', 'exec', ns, 'qemu-system-x86_64',
      '-name', `${this.state.id}-${vm.name}`, '-nodefaults', '-no-user-config',
      '-accel', 'tcg,tb-size=256', '-cpu', 'max', '-m', String(vm.memoryMb), '-smp', '1',
      '-display', 'none', '-vga', 'none', '-monitor', 'none',
      '-serial', `file:${this.consoleLog(vm)}`,
      '-daemonize', '-pidfile', this.pidFile(vm),
      '-kernel', img.kernel, '-initrd', img.initrd,
      '-append', `root=/dev/vda rw console=ttyS0 quiet net.ifnames=0 mitigations=off systemd.hostname=${vm.name}`,
      '-drive', `file=${overlay},if=virtio,format=qcow2,cache=unsafe`,
      '-netdev', `tap,id=net0,ifname=${vm.tap},script=no,downscript=no`,
      '-device', `virtio-net-pci,netdev=net0,mac=${vm.mac},romfile=`,
      '-device', 'virtio-rng-pci',
      '-virtfs', `local,path=${join(dir, 'share')},mount_tag=lab,security_model=none,readonly=on`
    ], { timeoutMs: 30_000 })
    vm.pid = Number(readFileSync(this.pidFile(vm), 'utf8').trim())
  }

  private controlPath (vm: VmState): string { return join(this.state.dir, `ssh-${vm.name}`) }

  private sshArgs (vm: VmState, extra: string[] = []): string[] {
    return ['netns', 'exec', this.state.ns, 'ssh', '-i', this.image.key,
      '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
      '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'ServerAliveInterval=5', '-o', 'ServerAliveCountMax=3',
      '-o', `ControlPath=${this.controlPath(vm)}`, ...extra, `root@${vm.ip}`]
  }

  /**
   * Waits until sshd in the VM answers, then keeps one ssh connection open (a control master)
   * that every later command shares: a new SSH handshake costs a TCG guest about a second.
   */
  async waitSsh (vm: VmState, timeoutMs: number): Promise<void> {
    rmSync(this.controlPath(vm), { force: true })
    await waitFor(`ssh to ${vm.name} (console: ${this.consoleLog(vm)})`, timeoutMs, async () => {
      this.assertQemuRunning(vm)
      // -f: once authenticated, the master goes to the background and this returns 0.
      return await exitsZero('ip', this.sshArgs(vm, ['-M', '-N', '-f', '-o', 'ControlPersist=yes']), 20_000)
    }, 1000)
  }

  /** After the VM rebooted (or its sshd restarted): drops the old control master and waits for a new one. */
  async reconnect (vm: VmState, timeoutMs: number): Promise<void> {
    if (existsSync(this.controlPath(vm))) await run('ip', this.sshArgs(vm, ['-O', 'exit']), { timeoutMs: 10_000 })
    await this.waitSsh(vm, timeoutMs)
  }

  private assertQemuRunning (vm: VmState): void {
    if (vm.pid !== undefined && !this.isOurQemu(vm.pid)) {
      throw new VmLabError(`QEMU of ${vm.name} (pid ${vm.pid}) is gone; console: ${this.consoleLog(vm)}\n${this.consoleTail(vm)}`, { fatal: true })
    }
  }

  consoleTail (vm: VmState, lines = 15): string {
    try { return readFileSync(this.consoleLog(vm), 'utf8').trimEnd().split('\n').slice(-lines).join('\n') } catch { return '(no console log)' }
  }

  /** True when `pid` is a QEMU of this run (its command line names this run's dir). */
  private isOurQemu (pid: number): boolean {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      return cmdline.startsWith('qemu-system') && cmdline.includes(this.state.dir)
    } catch { return false }
  }

  /** `ip` arguments for an ssh to the VM: an interactive shell when `script` is empty. */
  sshCommand (vm: VmState, script: string): string[] {
    return script === '' ? this.sshArgs(vm, ['-t']) : [...this.sshArgs(vm), script]
  }

  /** Runs a shell script in the VM as root; resolves to its outcome. */
  async sshRun (vm: VmState, script: string, opts: { timeoutMs?: number, input?: string } = {}): Promise<Outcome> {
    return await run('ip', [...this.sshArgs(vm), script], { timeoutMs: opts.timeoutMs ?? 60_000, ...(opts.input !== undefined ? { input: opts.input } : {}) })
  }

  /** Runs a shell script in the VM; a non-zero exit is an error naming the VM. */
  async ssh (vm: VmState, script: string, opts: { timeoutMs?: number, input?: string } = {}): Promise<string> {
    const o = await this.sshRun(vm, script, opts)
    if (o.code !== 0) throw new VmLabError(`${vm.name}: \`${script.slice(0, 160)}\`: exit ${o.code}: ${(o.stderr.trim() || o.stdout.trim()).slice(-2000)}`)
    return o.stdout
  }

  /**
   * The install step (README step 2): `apt-get install ./podmesh_*_amd64.deb` on a node that has
   * nodejs (>= 20) — in the image, a package of this machine's node standing in for NodeSource's.
   * The package must leave the service installed but neither enabled nor started.
   */
  async installPodmesh (vm: VmState): Promise<void> {
    const out = await this.ssh(vm, [
      'set -e',
      'mkdir -p /mnt/lab',
      'mountpoint -q /mnt/lab || mount -t 9p -o trans=virtio,version=9p2000.L,ro lab /mnt/lab',
      'install -m 0755 /mnt/lab/pod /mnt/lab/sandboxed /usr/local/sbin/',
      'dpkg-query -W nodejs >/dev/null',
      'cd /mnt/lab && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./podmesh_*_amd64.deb >/tmp/podmesh-install.log',
      'echo "$(systemctl is-enabled podmeshd || true) $(systemctl is-active podmeshd || true)"'
    ].join('\n'), { timeoutMs: 300_000 })
    if (out.trim() !== 'disabled inactive') throw new VmLabError(`${vm.name}: after the install podmeshd is "${out.trim()}" (enabled/active); the package must neither enable nor start it`)
  }

  /** Debian's etcd-server on `vm`, configured in /etc/default/etcd, listening on the lab bridge. */
  private async startEtcd (vm: VmState): Promise<void> {
    await this.ssh(vm, [
      'set -e',
      'cat >/etc/default/etcd <<EOF',
      `ETCD_NAME=${vm.name}`,
      `ETCD_LISTEN_CLIENT_URLS=http://${vm.ip}:2379,http://127.0.0.1:2379`,
      `ETCD_ADVERTISE_CLIENT_URLS=http://${vm.ip}:2379`,
      'EOF',
      'systemctl enable -q --now etcd'
    ].join('\n'), { timeoutMs: 180_000 })
  }

  /**
   * README step 3, `$EDITOR /etc/default/podmeshd`: set the etcd endpoints and the underlay
   * interface on the example lines the package installed; and for the lab a short resync (the
   * drift check waits for one) and masquerade (its check runs inside the unit's sandbox).
   */
  async configurePodmesh (vm: VmState): Promise<void> {
    const settings: Record<string, string> = {
      PODMESH_ETCD_ENDPOINTS: ETCD_URL,
      PODMESH_PUBLIC_INTERFACE: 'eth0',
      PODMESH_RESYNC_INTERVAL: '5s',
      PODMESH_MASQUERADE: 'true'
    }
    const edits = Object.entries(settings).map(([k, v]) => `-e 's|^#\\?${k}=.*|${k}=${v}|'`).join(' ')
    // Services: br_netfilter loaded now and at every boot (README, "Services"; podmeshd's sandbox may not load modules).
    const out = await this.ssh(vm, `set -e; echo br_netfilter > /etc/modules-load.d/podmesh.conf; modprobe br_netfilter; sed -i ${edits} /etc/default/podmeshd; grep '^PODMESH_' /etc/default/podmeshd`)
    for (const [k, v] of Object.entries(settings)) {
      if (!out.split('\n').includes(`${k}=${v}`)) throw new VmLabError(`${vm.name}: /etc/default/podmeshd has no line ${k}= to set (got:\n${out})`)
    }
  }

  /**
   * README step 6, `systemctl enable --now podmeshd`: Type=notify, so it returns once podmeshd
   * is ready, which /readyz must confirm at once.
   */
  async startPodmesh (vm: VmState): Promise<void> {
    const out = await this.ssh(vm, 'systemctl enable --now podmeshd && curl -s -m 3 http://127.0.0.1:9475/readyz', { timeoutMs: 180_000 })
    if (!out.startsWith('ready')) throw new VmLabError(`${vm.name}: \`systemctl enable --now podmeshd\` returned before podmeshd was ready: /readyz said ${out.trim()}`)
  }

  /**
   * README step 7: `podmeshctl doctor`, `status` and `diff "$(hostname)"` with the env file
   * loaded (step 4). diff may differ for a moment while the other nodes' records arrive.
   */
  async verifyNode (vm: VmState): Promise<void> {
    await this.ssh(vm, `${ENV} && podmeshctl doctor && podmeshctl status`, { timeoutMs: 240_000 })
    await waitFor(`${vm.name}: podmeshctl diff clean`, 60_000, async () => (await this.sshRun(vm, `${ENV} && podmeshctl diff "$(hostname)"`, { timeoutMs: 60_000 })).code === 0, 2000)
  }

  /** A pod: a network namespace attached through the conflist podmeshd wrote (guest/pod); `labels` ("app=web,tier=x") go to the plugins as args.cni.labels. */
  async addPod (vm: VmState, name: string, labels?: string): Promise<PodState> {
    const out = await this.ssh(vm, `${labels !== undefined ? `PODMESH_POD_LABELS=${labels} ` : ''}pod add ${name}`, { timeoutMs: 60_000 })
    const ips = out.trim().split('\n').filter(l => l !== '')
    if (ips.length !== 2) throw new VmLabError(`${vm.name}: pod ${name} got ${ips.length} addresses (want one per family): ${out}`)
    return { node: vm.name, name, ips }
  }

  /** Removes everything the lab made; tolerates a partial `up` and a second `down`. */
  async down (): Promise<string[]> {
    const problems: string[] = []
    const { ns, dir } = this.state
    for (const vm of this.state.vms) {
      if (existsSync(this.controlPath(vm))) await run('ip', this.sshArgs(vm, ['-O', 'exit']), { timeoutMs: 10_000 })
    }
    for (const vm of this.state.vms) {
      let pid = vm.pid
      if (pid === undefined && existsSync(this.pidFile(vm))) pid = Number(readFileSync(this.pidFile(vm), 'utf8').trim())
      if (pid === undefined || !this.isOurQemu(pid)) continue
      process.kill(pid, 'SIGKILL')
      const gone = await waitFor(`QEMU ${pid} of ${vm.name} gone`, 10_000, async () => !this.isOurQemu(pid as number), 100).then(() => true, () => false)
      if (!gone) problems.push(`QEMU ${pid} of ${vm.name} did not end`)
    }
    if ((await run('ip', ['netns', 'list'])).stdout.split('\n').some(l => l.split(' ')[0] === ns)) {
      const o = await run('ip', ['netns', 'del', ns])
      if (o.code !== 0) problems.push(`ip netns del ${ns}: ${o.stderr.trim()}`)
    }
    if (dir.startsWith('/var/tmp/podmesh-vm-')) rmSync(dir, { recursive: true, force: true })
    rmSync(this.stateFile, { force: true })
    return problems
  }
}

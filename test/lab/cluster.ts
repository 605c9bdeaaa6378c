// The netns lab: a hub namespace is the underlay (a bridge with 192.0.2.1/24 and 2001:db8::1/64,
// or only one of them, at the kernel's or a given MTU; etcd listening on it, optionally over TLS), each node is a namespace with a veth on that bridge running the compiled
// podmeshd, and each pod is a namespace attached through the CNI conflist that podmeshd wrote,
// by the lab's CNI runtime. Everything is named per run and removed by destroy(), which also
// kills every process the lab started (by PID) and every wireguard-go of its interfaces.
// Usable from tap tests and from scripts/lab (the demo).

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { REPO_ROOT, sh as harnessSh } from '../harness/netns'
import { mkdtempSync, rmSync, existsSync, openSync, closeSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { cniAdd, cniDel, type CniResult, type PortMapping } from './cni-runtime'

export { waitFor, waitForValue } from '../harness/wait'

export const ROOT = REPO_ROOT
const DAEMON = join(ROOT, 'dist', 'cmd', 'podmeshd.js')
const CTL = join(ROOT, 'dist', 'cmd', 'podmeshctl.js')

/** The harness runner, returning stdout; `allowFail` turns a failure into ''. */
export async function sh (cmd: string, args: readonly string[], opts: { input?: string, allowFail?: boolean, timeoutMs?: number } = {}): Promise<string> {
  try {
    return (await harnessSh(cmd, args, { ...(opts.input !== undefined ? { input: opts.input } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) })).stdout
  } catch (e) {
    if (opts.allowFail === true) return ''
    throw e
  }
}

export const nsExec = async (ns: string, args: readonly string[], opts?: { allowFail?: boolean, timeoutMs?: number }): Promise<string> =>
  await sh('ip', ['netns', 'exec', ns, ...args], opts)

export interface LabOptions {
  nodes: number
  podsPerNode?: number
  backend?: 'wireguard' | 'vxlan'
  dualStack?: boolean
  /** Mixed mode: location label per node index (0-based). */
  locations?: string[]
  vxlanWithinLocation?: boolean
  resyncInterval?: string
  extraDaemonArgs?: string[]
  /**
   * Nodes (1-based) that take their underlay from eth0 (--public-interface) instead of a fixed
   * --public-address, so it may move; their health server listens on every address.
   */
  followUnderlay?: number[]
  /**
   * etcd members (default 1: one etcd in the hub namespace on 192.0.2.1). With 3, each member
   * runs in its own namespace on the hub bridge (192.0.2.2, .3, .4; nodes use .11 and up) and
   * podmeshd and podmeshctl get every endpoint; killEtcd/startEtcdMember/partitionEtcd act on one.
   */
  etcdMembers?: number
  /**
   * etcd auth on: `podmeshctl auth enable` after init, `podmeshctl node credentials` per node,
   * and each podmeshd runs as its own user (PODMESH_ETCD_USERNAME/PASSWORD in its environment,
   * as from /etc/default/podmeshd). lab.ctl/etcdctl run as root.
   */
  etcdAuth?: boolean
  /**
   * The underlay's families: 'dual' (default: both addresses on every interface, etcd and the
   * endpoints on IPv4), 'ipv4' or 'ipv6' only (interfaces, etcd and endpoints of that family).
   */
  underlay?: 'dual' | 'ipv4' | 'ipv6'
  /** With a dual underlay: the family of the endpoint each node (by 0-based index) publishes (default 4). */
  endpointFamilies?: Array<4 | 6>
  /** MTU of the underlay: the hub bridge and both ends of every node's veth (default: the kernel's 1500). */
  underlayMtu?: number
  /**
   * Two racks joined through two routers by a narrower link (issue #12): the nodes listed in
   * `rackB` (1-based) sit on rack B (198.51.100.0/24, 2001:db8:1::/64, a bridge of its own)
   * behind router r2; the others on rack A (the hub's bridge, with etcd) behind r1; r1–r2 is a
   * link of `narrowMtu` bytes while every node's own interface stays at 1500.
   */
  racks?: { rackB: number[], narrowMtu: number }
  /**
   * The single hub etcd serves https:// and requires client certificates (--client-cert-auth).
   * The files are the test's (test/harness/pki.ts makes them); the server certificate must name
   * 192.0.2.1. podmeshd, podmeshctl, etcdctl and the health check present the client certificate.
   */
  etcdTls?: LabEtcdTls
  /**
   * Services (issue #11): init with service ranges (SERVICE_CIDR4/6, NodePorts LAB_NODE_PORTS),
   * so podmeshd puts its CNI plugin in the conflist; the lab's CNI runtime finds it in a plugin
   * dir of the lab's own (a wrapper of the compiled dist/cmd/podmesh-cni.js).
   */
  services?: boolean
}

export const SERVICE_CIDR4 = '10.96.0.0/16'
export const SERVICE_CIDR6 = 'fd00:96::/112'
export const LAB_NODE_PORTS = { min: 30000, max: 30099 }

export interface LabEtcdTls { caFile: string, serverCertFile: string, serverKeyFile: string, clientCertFile: string, clientKeyFile: string }

/** One etcd user and its password. */
export interface EtcdCredential { user: string, password: string }

interface EtcdMember { name: string, ns: string, ip: string, hubVeth: string, proc?: ChildProcess, partitioned: boolean }

export interface LabState { id: string, dir: string, namespaces: string[], pids: number[], wgInterfaces: string[] }

export interface LabPod { name: string, node: LabNode, ns: string, ips: string[] }

export class LabNode {
  daemon: ChildProcess | undefined
  readonly pods: LabPod[] = []
  constructor (readonly lab: Lab, readonly index: number, readonly name: string, readonly ns: string,
    readonly underlayIp: string, readonly underlayIp6: string, readonly wgIf: string, readonly dir: string, public location?: string) {}

  get conflist (): string { return join(this.dir, 'cni', '10-podmesh.conflist') }
  get logFile (): string { return join(this.dir, 'podmeshd.log') }
  /** The podmesh CNI plugin's spool on this node (--pod-dir). */
  get podDir (): string { return join(this.dir, 'pods') }
  get followsUnderlay (): boolean { return this.lab.opts.followUnderlay?.includes(this.index) === true }
  /** The family of the endpoint this node publishes. */
  get endpointFamily (): 4 | 6 {
    const u = this.lab.opts.underlay ?? 'dual'
    return u === 'ipv6' ? 6 : u === 'ipv4' ? 4 : this.lab.opts.endpointFamilies?.[this.index - 1] ?? 4
  }
  /** The address this node publishes as its endpoint. */
  get publicIp (): string { return this.endpointFamily === 6 ? this.underlayIp6 : this.underlayIp }
  private get metricsHost (): string { return this.followsUnderlay ? '127.0.0.1' : this.endpointFamily === 6 ? `[${this.underlayIp6}]` : this.underlayIp }
  /** Reached from inside the node's namespace; loopback where the underlay address may move. */
  get metricsUrl (): string { return `http://${this.metricsHost}:9475` }

  /** The node's etcd user when the lab runs etcd with auth (set by Lab.addNode). */
  credential: EtcdCredential | undefined

  daemonArgs (): string[] {
    return [
      '--etcd-endpoints', this.lab.etcdUrl,
      ...this.lab.etcdTlsFlags,
      '--node-name', this.name,
      ...(this.followsUnderlay ? ['--public-interface', 'eth0'] : ['--public-address', this.publicIp]),
      '--wg-interface', this.wgIf,
      '--vxlan-interface', `${this.wgIf}x`,
      '--wg-mode', 'userspace',
      '--state-dir', join(this.dir, 'state'),
      '--cni-conf-dir', join(this.dir, 'cni'),
      '--cni-data-dir', join(this.dir, 'ipam'),
      '--pod-dir', this.podDir,
      '--metrics-address', `${this.followsUnderlay ? '0.0.0.0' : this.metricsHost}:9475`,
      '--resync-interval', this.lab.opts.resyncInterval ?? '2s',
      '--lease-ttl', '60s',
      ...(this.location !== undefined ? ['--location', this.location] : []),
      ...(this.lab.opts.extraDaemonArgs ?? [])
    ]
  }

  /** Starts podmeshd in the node's namespace; resolves when /readyz says ready. */
  async start (extra: string[] = [], readyTimeoutMs = 30_000, credential = this.credential): Promise<void> {
    this.spawnDaemon(extra, credential)
    await this.waitReady(readyTimeoutMs)
  }

  /** Starts podmeshd without waiting; the credential goes in its environment, as systemd's EnvironmentFile does. */
  spawnDaemon (extra: string[] = [], credential = this.credential): ChildProcess {
    mkdirSync(this.dir, { recursive: true })
    const fd = openSync(this.logFile, 'a')
    const env = credential === undefined
      ? process.env
      : { ...process.env, PODMESH_ETCD_USERNAME: credential.user, PODMESH_ETCD_PASSWORD: credential.password }
    this.daemon = spawn('ip', ['netns', 'exec', this.ns, process.execPath, DAEMON, ...this.daemonArgs(), ...extra], { stdio: ['ignore', fd, fd], env })
    closeSync(fd)
    this.lab.track(this.daemon)
    return this.daemon
  }

  async waitReady (timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (this.daemon?.exitCode !== null && this.daemon?.exitCode !== undefined) {
        throw new Error(`podmeshd on ${this.name} exited with ${this.daemon.exitCode}:\n${this.logTail()}`)
      }
      const out = await nsExec(this.ns, ['curl', '-s', '-m', '1', `${this.metricsUrl}/readyz`], { allowFail: true })
      if (out.startsWith('ready')) return
      await sleep(100)
    }
    throw new Error(`podmeshd on ${this.name} not ready after ${timeoutMs} ms:\n${this.logTail()}`)
  }

  /** SIGTERM (graceful: data plane stays) and wait for exit. */
  async stop (): Promise<void> {
    const d = this.daemon
    if (d === undefined || d.exitCode !== null || d.signalCode !== null) return
    const exited = new Promise(resolve => d.once('exit', resolve))
    d.kill('SIGTERM')
    await Promise.race([exited, sleep(10_000)])
    if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL')
    this.daemon = undefined
  }

  logTail (lines = 30): string {
    try { return readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n') } catch { return '(no log)' }
  }

  /** A pod through the node's conflist; `labels` go to the plugins as the CNI conventions' args.cni.labels, `portMappings` to portmap (hostPorts). */
  async addPod (j: number, o: { labels?: Readonly<Record<string, string>>, portMappings?: PortMapping[] } = {}): Promise<LabPod> {
    const name = `${this.name}-p${j}`
    const ns = `${this.lab.id}${this.index}p${j}`
    await sh('ip', ['netns', 'add', ns])
    this.lab.namespaces.push(ns)
    await nsExec(ns, ['ip', 'link', 'set', 'lo', 'up'])
    const labels = Object.entries(o.labels ?? {}).map(([key, value]) => ({ key, value }))
    const result: CniResult = await cniAdd({
      ...this.cniCall(ns),
      ...(labels.length > 0 ? { args: { cni: { labels } } } : {}),
      ...(o.portMappings !== undefined ? { capabilityArgs: { portMappings: o.portMappings } } : {})
    })
    const ips = (result.ips ?? []).map(i => i.address.split('/')[0] as string)
    const pod = { name, node: this, ns, ips }
    this.pods.push(pod)
    return pod
  }

  async delPod (pod: LabPod): Promise<void> {
    await cniDel(this.cniCall(pod.ns))
  }

  private cniCall (ns: string): { conflistPath: string, containerId: string, netns: string, hostNetns: string, ifName: string, cacheDir: string, pluginDirs: string[] } {
    return { conflistPath: this.conflist, containerId: ns, netns: ns, hostNetns: this.ns, ifName: 'eth0', cacheDir: join(this.dir, 'cni-cache'), pluginDirs: this.lab.cniPluginDirs }
  }

  /** Runs podmeshctl (compiled) inside this node's namespace, as an operator on the node would. */
  async ctl (...args: string[]): Promise<string> {
    return await nsExec(this.ns, [process.execPath, CTL, '--etcd-endpoints', this.lab.etcdUrl, ...this.lab.etcdTlsFlags, ...args])
  }

  /** podmeshctl in this node's namespace with its exit code and both outputs (for commands whose non-zero exit is a finding: diff, doctor). */
  async ctlRun (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
    return await new Promise(resolve => {
      execFile('ip', ['netns', 'exec', this.ns, process.execPath, CTL, '--etcd-endpoints', this.lab.etcdUrl, ...this.lab.etcdTlsFlags, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
      })
    })
  }

  async routes (): Promise<string> { return await nsExec(this.ns, ['ip', '-d', 'route', 'show', 'table', 'main']) }
  /** `wg show <device> …`; a failure (no device, no wg, no namespace) throws: see linkExists for "is it there". */
  async wg (...args: string[]): Promise<string> { return await nsExec(this.ns, ['wg', 'show', this.wgIf, ...args]) }
  /**
   * Whether the node's namespace has a link of that name, read from the full link list: absence
   * is an answer, while a failed `ip` (no namespace, no binary) throws instead of reading as absent.
   */
  async linkExists (dev: string): Promise<boolean> {
    const links = JSON.parse(await nsExec(this.ns, ['ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>
    return links.some(l => l.ifname === dev)
  }

  /** The node's own address in its pod subnets (the tunnel address), per family. */
  async tunnelAddresses (): Promise<string[]> {
    // Every link's addresses at once: the backend's other device may not exist, and that is no error.
    const links = JSON.parse(await nsExec(this.ns, ['ip', '-j', 'addr', 'show'])) as Array<{ ifname: string, addr_info: Array<{ local: string, scope: string }> }>
    const found = [this.wgIf, `${this.wgIf}x`].flatMap(dev => links.filter(l => l.ifname === dev))
      .flatMap(l => l.addr_info.filter(a => a.scope === 'global').map(a => a.local))
    return [...new Set(found)]
  }
}

export class Lab {
  readonly id: string
  readonly hub: string
  readonly dir: string
  readonly nodes: LabNode[] = []
  /** Every node ever added, also those a test removed from `nodes`: cleanup must reach them all. */
  private readonly everyNode: LabNode[] = []
  readonly namespaces: string[] = []
  private readonly procs: ChildProcess[] = []
  etcd: ChildProcess | undefined
  etcdPort = 0
  /** The members of a multi-member etcd (etcdMembers > 1); empty for the single hub etcd. */
  private readonly etcdMembers: EtcdMember[] = []
  /** etcd's root user once the lab turned auth on. */
  etcdRoot: EtcdCredential | undefined
  private destroyed = false

  constructor (readonly opts: LabOptions) {
    // ≤ 6 chars: namespace and interface names carry it and must stay under 15 characters.
    this.id = `pm${randomBytes(2).toString('hex')}`
    this.hub = `${this.id}hub`
    this.dir = mkdtempSync(join(tmpdir(), `podmesh-lab-${this.id}-`))
  }

  /** Every client URL of the lab's etcd. */
  get etcdEndpoints (): string[] {
    return this.etcdMembers.length === 0
      ? [`${this.opts.etcdTls !== undefined ? 'https' : 'http'}://${this.opts.underlay === 'ipv6' ? '[2001:db8::1]' : '192.0.2.1'}:${this.etcdPort}`]
      : this.etcdMembers.map(m => `http://${m.ip}:2379`)
  }

  /** podmeshd's and podmeshctl's TLS flags for the lab's etcd (none without etcdTls). */
  get etcdTlsFlags (): string[] {
    const tls = this.opts.etcdTls
    return tls === undefined ? [] : ['--etcd-ca', tls.caFile, '--etcd-cert', tls.clientCertFile, '--etcd-key', tls.clientKeyFile]
  }

  /** The same for etcdctl and curl. */
  private get etcdClientTlsArgs (): string[] {
    const tls = this.opts.etcdTls
    return tls === undefined ? [] : ['--cacert', tls.caFile, '--cert', tls.clientCertFile, '--key', tls.clientKeyFile]
  }

  /** Where the lab's CNI runtime looks for plugins: the lab's own dir (podmesh's plugin) first, then Debian's. */
  get cniPluginDirs (): string[] { return [join(this.dir, 'cni-bin'), '/usr/lib/cni'] }

  /** What --etcd-endpoints takes: the one URL, or every member's comma-separated. */
  get etcdUrl (): string { return this.etcdEndpoints.join(',') }
  private get hasIpv4 (): boolean { return this.opts.underlay !== 'ipv6' }
  private get hasIpv6 (): boolean { return this.opts.underlay !== 'ipv4' }
  /** `ip link … mtu N` arguments for the underlay's links, when the lab sets one. */
  private get mtuArgs (): string[] { return this.opts.underlayMtu !== undefined ? ['mtu', String(this.opts.underlayMtu)] : [] }

  track (p: ChildProcess): void { this.procs.push(p) }

  /** Lets this process exit while the lab keeps running (the demo); returns what `down` needs. */
  detach (): LabState {
    for (const p of this.procs) p.unref()
    this.destroyed = true
    return {
      id: this.id,
      dir: this.dir,
      namespaces: [...this.everyNode.flatMap(n => n.pods.map(p => p.ns)), ...this.namespaces],
      pids: this.procs.filter(p => p.exitCode === null && p.pid !== undefined).map(p => p.pid as number),
      wgInterfaces: this.everyNode.map(n => n.wgIf)
    }
  }

  /** Tears down a detached lab from its recorded state. */
  static async destroyDetached (s: LabState): Promise<void> {
    for (const pid of s.pids) {
      // The recorded PIDs are `ip netns exec` wrappers that exec'd into the daemon/etcd: same PID.
      try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
    }
    await sleep(200)
    for (const w of s.wgInterfaces) await killWireguardGo(w)
    for (const ns of s.namespaces) await sh('ip', ['netns', 'del', ns], { allowFail: true })
    rmSync(s.dir, { recursive: true, force: true })
  }

  static async create (opts: LabOptions): Promise<Lab> {
    const lab = new Lab(opts)
    try {
      await lab.setup()
    } catch (e) {
      await lab.destroy()
      throw e
    }
    return lab
  }

  private async setup (): Promise<void> {
    if (!existsSync(DAEMON)) await sh('npm', ['run', '-s', 'build'], { timeoutMs: 180_000 })
    await sh('ip', ['netns', 'add', this.hub])
    this.namespaces.push(this.hub)
    await nsExec(this.hub, ['ip', 'link', 'set', 'lo', 'up'])
    await nsExec(this.hub, ['ip', 'link', 'add', 'br0', ...this.mtuArgs, 'type', 'bridge'])
    if (this.hasIpv4) await nsExec(this.hub, ['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'br0'])
    if (this.hasIpv6) await nsExec(this.hub, ['ip', 'addr', 'add', '2001:db8::1/64', 'dev', 'br0', 'nodad'])
    await nsExec(this.hub, ['ip', 'link', 'set', 'br0', 'up'])
    if (this.opts.racks !== undefined) await this.buildRacks(this.opts.racks.narrowMtu)
    if ((this.opts.etcdMembers ?? 1) > 1 && this.opts.etcdTls !== undefined) throw new Error('etcdTls is for the single hub etcd only')
    if ((this.opts.etcdMembers ?? 1) > 1) await this.startEtcdCluster(this.opts.etcdMembers as number)
    else await this.startEtcd()
    const args = ['init', '--ipv4-cidr', '10.244.0.0/16', '--subnet-len4', '24']
    if (this.opts.dualStack !== false) args.push('--ipv6-cidr', 'fd00:10:244::/56', '--subnet-len6', '64')
    args.push('--backend', this.opts.backend ?? 'wireguard')
    if (this.opts.vxlanWithinLocation === true) args.push('--vxlan-within-location')
    if (this.opts.services === true) {
      args.push('--service-cidr', SERVICE_CIDR4, '--node-port-range', `${LAB_NODE_PORTS.min}-${LAB_NODE_PORTS.max}`)
      if (this.opts.dualStack !== false) args.push('--service-cidr', SERVICE_CIDR6)
    }
    this.installCniPlugin()
    await this.ctl(...args)
    if (this.opts.etcdAuth === true) await this.enableEtcdAuth()
    for (let i = 1; i <= this.opts.nodes; i++) await this.addNode(i)
    await Promise.all(this.nodes.map(async n => await n.start()))
    for (const n of this.nodes) {
      for (let j = 1; j <= (this.opts.podsPerNode ?? 0); j++) await n.addPod(j)
    }
  }

  /** podmesh's CNI plugin for the lab's runtime: a wrapper running the compiled plugin with this node binary. */
  private installCniPlugin (): void {
    const dir = join(this.dir, 'cni-bin')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'podmesh'), `#!/bin/sh\nexec ${process.execPath} ${join(ROOT, 'dist', 'cmd', 'podmesh-cni.js')} "$@"\n`, { mode: 0o755 })
  }

  get router1 (): string { return `${this.id}r1` }
  get router2 (): string { return `${this.id}r2` }
  inRackB (i: number): boolean { return this.opts.racks?.rackB.includes(i) === true }

  /** Rack B's bridge (no address in the hub: only the routers join the racks) and the two routers. */
  private async buildRacks (narrowMtu: number): Promise<void> {
    await nsExec(this.hub, ['ip', 'link', 'add', 'br1', 'type', 'bridge'])
    await nsExec(this.hub, ['ip', 'link', 'set', 'br1', 'up'])
    const sides = [
      { ns: this.router1, hubEnd: 'ra', bridge: 'br0', v4: '192.0.2.254/24', v6: '2001:db8::fe/64', wan4: '203.0.113.1/30', wan6: '2001:db8:ff::1/64', far4: ['198.51.100.0/24', '203.0.113.2'], far6: ['2001:db8:1::/64', '2001:db8:ff::2'] },
      { ns: this.router2, hubEnd: 'rb', bridge: 'br1', v4: '198.51.100.254/24', v6: '2001:db8:1::fe/64', wan4: '203.0.113.2/30', wan6: '2001:db8:ff::2/64', far4: ['192.0.2.0/24', '203.0.113.1'], far6: ['2001:db8::/64', '2001:db8:ff::1'] }
    ]
    for (const r of sides) {
      await sh('ip', ['netns', 'add', r.ns])
      this.namespaces.push(r.ns)
      await nsExec(r.ns, ['ip', 'link', 'set', 'lo', 'up'])
      await nsExec(this.hub, ['ip', 'link', 'add', r.hubEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', r.ns])
      await nsExec(this.hub, ['ip', 'link', 'set', r.hubEnd, 'master', r.bridge, 'up'])
      await nsExec(r.ns, ['ip', 'addr', 'add', r.v4, 'dev', 'eth0'])
      await nsExec(r.ns, ['ip', 'addr', 'add', r.v6, 'dev', 'eth0', 'nodad'])
      await nsExec(r.ns, ['ip', 'link', 'set', 'eth0', 'up'])
      await nsExec(r.ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'])
    }
    await nsExec(this.router1, ['ip', 'link', 'add', 'wan', 'mtu', String(narrowMtu), 'type', 'veth', 'peer', 'name', 'wan', 'mtu', String(narrowMtu), 'netns', this.router2])
    for (const r of sides) {
      await nsExec(r.ns, ['ip', 'addr', 'add', r.wan4, 'dev', 'wan'])
      await nsExec(r.ns, ['ip', 'addr', 'add', r.wan6, 'dev', 'wan', 'nodad'])
      await nsExec(r.ns, ['ip', 'link', 'set', 'wan', 'up'])
      await nsExec(r.ns, ['ip', 'route', 'add', r.far4[0] as string, 'via', r.far4[1] as string])
      await nsExec(r.ns, ['ip', '-6', 'route', 'add', r.far6[0] as string, 'via', r.far6[1] as string])
    }
    await sh('ip', ['netns', 'exec', this.router1, 'nft', '-f', '-'], {
      input: 'table inet podmeshlab {\n chain frags {\n  type filter hook forward priority 0;\n  ip frag-off & 0x3fff != 0 counter\n  exthdr frag exists counter\n }\n}\n'
    })
    // etcd (in the hub, on rack A) answers rack B through r1.
    await nsExec(this.hub, ['ip', 'route', 'add', '198.51.100.0/24', 'via', '192.0.2.254'])
    await nsExec(this.hub, ['ip', '-6', 'route', 'add', '2001:db8:1::/64', 'via', '2001:db8::fe'])
  }

  /**
   * IP fragments that crossed the narrow link since the racks were built (IPv4 packets with
   * more-fragments or an offset, IPv6 packets with a fragment header), counted by nftables on r1.
   */
  async narrowLinkFragments (): Promise<{ v4: number, v6: number }> {
    const out = await nsExec(this.router1, ['nft', '-j', 'list', 'table', 'inet', 'podmeshlab'])
    const counters = (JSON.parse(out) as { nftables: Array<{ rule?: { expr: Array<{ counter?: { packets: number } }> } }> }).nftables
      .flatMap(x => x.rule?.expr.flatMap(e => e.counter !== undefined ? [e.counter.packets] : []) ?? [])
    return { v4: counters[0] ?? 0, v6: counters[1] ?? 0 }
  }

  private get etcdDataDir (): string { return join(this.dir, 'etcd') }
  private get etcdPeerUrl (): string { return `http://${this.hasIpv4 ? '127.0.0.1' : '[::1]'}:${this.etcdPort + 1}` }

  async startEtcd (): Promise<void> {
    if (this.etcdPort === 0) this.etcdPort = 20000 + Math.floor(Math.random() * 20000)
    const dataDir = this.etcdDataDir
    const url = this.etcdUrl
    const peer = this.etcdPeerUrl
    const fd = openSync(join(this.dir, 'etcd.log'), 'a')
    const tls = this.opts.etcdTls
    const tlsArgs = tls === undefined ? [] : ['--cert-file', tls.serverCertFile, '--key-file', tls.serverKeyFile, '--trusted-ca-file', tls.caFile, '--client-cert-auth']
    this.etcd = spawn('ip', ['netns', 'exec', this.hub, 'etcd', '--name', this.id, '--data-dir', dataDir,
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `${this.id}=${peer}`,
      ...tlsArgs, '--log-level', 'warn', '--logger', 'zap'], { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    this.track(this.etcd)
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      const out = await nsExec(this.hub, ['curl', '-s', '-m', '1', ...this.etcdClientTlsArgs, `${url}/health`], { allowFail: true })
      if (out.includes('"health":"true"')) return
      await sleep(100)
    }
    throw new Error(`lab etcd did not become healthy: ${readFileSync(join(this.dir, 'etcd.log'), 'utf8').slice(-2000)}`)
  }

  async stopEtcd (): Promise<void> {
    const e = this.etcd
    if (e === undefined || e.exitCode !== null) return
    const exited = new Promise(resolve => e.once('exit', resolve))
    e.kill('SIGTERM')
    await Promise.race([exited, sleep(10_000)])
    this.etcd = undefined
  }

  /** Saves a snapshot of the lab's etcd to `file`. */
  async snapshotEtcd (file: string): Promise<void> {
    await this.etcdctl('snapshot', 'save', file)
  }

  /** An operator's restore: stop etcd, replace its data with the snapshot, start it on the same endpoint. */
  async restoreEtcd (file: string): Promise<void> {
    await this.stopEtcd()
    rmSync(this.etcdDataDir, { recursive: true, force: true })
    await sh('env', ['ETCDCTL_API=3', 'etcdctl', 'snapshot', 'restore', file, '--data-dir', this.etcdDataDir, '--name', this.id,
      '--initial-cluster', `${this.id}=${this.etcdPeerUrl}`, '--initial-advertise-peer-urls', this.etcdPeerUrl])
    await this.startEtcd()
  }

  /** Runs podmeshctl (compiled) inside the hub namespace against the lab's etcd (as root when auth is on). */
  async ctl (...args: string[]): Promise<string> {
    return await this.ctlAs(this.etcdRoot, ...args)
  }

  /** Runs podmeshctl with the given etcd user (none: anonymous), the password in its environment. */
  async ctlAs (cred: EtcdCredential | undefined, ...args: string[]): Promise<string> {
    const env = cred === undefined ? [] : ['env', `PODMESH_ETCD_USERNAME=${cred.user}`, `PODMESH_ETCD_PASSWORD=${cred.password}`]
    return await nsExec(this.hub, [...env, process.execPath, CTL, '--etcd-endpoints', this.etcdUrl, ...this.etcdTlsFlags, ...args])
  }

  /** etcdctl against every endpoint (as root when auth is on). */
  async etcdctl (...args: string[]): Promise<string> {
    return await this.etcdctlAs(this.etcdRoot, ...args)
  }

  async etcdctlAs (cred: EtcdCredential | undefined, ...args: string[]): Promise<string> {
    return await nsExec(this.hub, ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', this.etcdUrl, ...this.etcdClientTlsArgs,
      ...(cred === undefined ? [] : ['--user', `${cred.user}:${cred.password}`]), ...args])
  }

  /** `podmeshctl auth enable`, as an operator runs it after init; keeps root's password for the lab. */
  private async enableEtcdAuth (): Promise<void> {
    const made = JSON.parse(await this.ctlAs(undefined, 'auth', 'enable', '-o', 'json')) as Array<{ user: string, password?: string }>
    const root = made.find(c => c.user === 'root')
    if (root?.password === undefined) throw new Error(`auth enable printed no root password: ${JSON.stringify(made.map(c => c.user))}`)
    this.etcdRoot = { user: root.user, password: root.password }
  }

  /** `podmeshctl node credentials <name>` as root: the node's own etcd user. */
  async nodeCredentials (name: string): Promise<EtcdCredential> {
    const [c] = JSON.parse(await this.ctl('node', 'credentials', name, '-o', 'json')) as Array<{ user: string, password?: string }>
    if (c?.password === undefined) throw new Error(`node credentials ${name} printed no password`)
    return { user: c.user, password: c.password }
  }

  // --- a multi-member etcd (etcdMembers > 1) ---

  private etcdMember (i: number): EtcdMember {
    const m = this.etcdMembers[i]
    if (m === undefined) throw new Error(`no etcd member ${i} (the lab has ${this.etcdMembers.length})`)
    return m
  }

  private async startEtcdCluster (size: number): Promise<void> {
    if (size > 8) throw new Error('at most 8 etcd members (192.0.2.2-9; nodes start at .11)')
    for (let i = 0; i < size; i++) {
      const ns = `${this.id}e${i}`
      const m: EtcdMember = { name: `etcd${i}`, ns, ip: `192.0.2.${2 + i}`, hubVeth: `e${i}`, partitioned: false }
      await sh('ip', ['netns', 'add', ns])
      this.namespaces.push(ns)
      await nsExec(ns, ['ip', 'link', 'set', 'lo', 'up'])
      await nsExec(this.hub, ['ip', 'link', 'add', m.hubVeth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      await nsExec(this.hub, ['ip', 'link', 'set', m.hubVeth, 'master', 'br0', 'up'])
      await nsExec(ns, ['ip', 'addr', 'add', `${m.ip}/24`, 'dev', 'eth0'])
      await nsExec(ns, ['ip', 'link', 'set', 'eth0', 'up'])
      this.etcdMembers.push(m)
    }
    for (let i = 0; i < size; i++) this.spawnEtcdMember(i)
    await this.waitEtcdHealthy(30_000)
  }

  private spawnEtcdMember (i: number): void {
    const m = this.etcdMember(i)
    const url = `http://${m.ip}:2379`
    const peer = `http://${m.ip}:2380`
    const cluster = this.etcdMembers.map(x => `${x.name}=http://${x.ip}:2380`).join(',')
    const fd = openSync(join(this.dir, `${m.name}.log`), 'a')
    // etcd's default raft timings (100 ms heartbeat, 1 s election), as in production. On a
    // restart the data dir exists and the --initial-* flags are ignored.
    const p = spawn('ip', ['netns', 'exec', m.ns, 'etcd', '--name', m.name, '--data-dir', join(this.dir, m.name),
      '--listen-client-urls', url, '--advertise-client-urls', url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', this.id,
      '--log-level', 'warn', '--logger', 'zap'], { stdio: ['ignore', fd, fd] })
    closeSync(fd)
    this.track(p)
    m.proc = p
  }

  /** The member's process is running (not killed). */
  etcdRunning (i: number): boolean {
    const p = this.etcdMember(i).proc
    return p !== undefined && p.exitCode === null && p.signalCode === null
  }

  /** Members that run and are not partitioned: those the hub can ask. */
  private reachableMembers (): number[] {
    return this.etcdMembers.map((_, i) => i).filter(i => this.etcdRunning(i) && !this.etcdMember(i).partitioned)
  }

  /** The index of the current leader among the reachable members; -1 when none of them is leader. */
  async etcdLeader (): Promise<number> {
    const reach = this.reachableMembers()
    if (reach.length === 0) return -1
    const eps = reach.map(i => `http://${this.etcdMember(i).ip}:2379`)
    const out = await nsExec(this.hub, ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', eps.join(','), '--command-timeout=2s',
      ...(this.etcdRoot === undefined ? [] : ['--user', `${this.etcdRoot.user}:${this.etcdRoot.password}`]),
      'endpoint', 'status', '-w', 'json'], { allowFail: true })
    if (out.trim() === '') return -1
    const st = JSON.parse(out) as Array<{ Endpoint: string, Status: { header: { member_id: number }, leader: number } }>
    const lead = st.find(s => s.Status.leader !== 0 && s.Status.header.member_id === s.Status.leader)
    return lead === undefined ? -1 : this.etcdMembers.findIndex(m => lead.Endpoint === `http://${m.ip}:2379`)
  }

  /** The members that are reachable and answer `etcdctl endpoint health` (a leader, a quorum read). */
  async etcdMembersHealthy (): Promise<number[]> {
    const ok = await Promise.all(this.reachableMembers().map(async i => {
      const out = await nsExec(this.hub, ['env', 'ETCDCTL_API=3', 'etcdctl', '--endpoints', `http://${this.etcdMember(i).ip}:2379`, '--command-timeout=2s',
        ...(this.etcdRoot === undefined ? [] : ['--user', `${this.etcdRoot.user}:${this.etcdRoot.password}`]),
        'endpoint', 'health'], { timeoutMs: 10_000 }).then(() => true, () => false) // etcdctl says so by its exit status
      return out ? i : -1
    }))
    return ok.filter(i => i >= 0)
  }

  /** Waits until the reachable members have a leader; resolves to its index. */
  async waitEtcdHealthy (timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      const l = await this.etcdLeader()
      if (l >= 0) return l
      await sleep(100)
    }
    const logs = this.etcdMembers.map(m => `${m.name}: ${tail(join(this.dir, `${m.name}.log`), 5)}`).join('\n')
    throw new Error(`lab etcd has no leader after ${timeoutMs} ms:\n${logs}`)
  }

  /** SIGKILL member i: no goodbye to its peers or clients. */
  async killEtcd (i: number): Promise<void> {
    const p = this.etcdMember(i).proc
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return
    const exited = new Promise(resolve => p.once('exit', resolve))
    p.kill('SIGKILL')
    await exited
  }

  /** Starts member i again on its data dir (after killEtcd). */
  startEtcdMember (i: number): void {
    if (this.etcdRunning(i)) return
    this.spawnEtcdMember(i)
  }

  /**
   * A real network partition of member i: its link on the hub bridge goes down (on), or up again
   * (off). Its process runs on, its clients' TCP connections stay open and get no answer.
   */
  async partitionEtcd (i: number, on: boolean): Promise<void> {
    const m = this.etcdMember(i)
    await nsExec(this.hub, ['ip', 'link', 'set', 'dev', m.hubVeth, on ? 'down' : 'up'])
    m.partitioned = on
  }

  async addNode (i: number): Promise<LabNode> {
    const ns = `${this.id}n${i}`
    const rackB = this.inRackB(i)
    const node = new LabNode(this, i, `node-${i}`, ns, rackB ? `198.51.100.${10 + i}` : `192.0.2.${10 + i}`, rackB ? `2001:db8:1::${10 + i}` : `2001:db8::${10 + i}`, `${this.id}w${i}`,
      join(this.dir, `node-${i}`), this.opts.locations?.[i - 1])
    await sh('ip', ['netns', 'add', ns])
    this.namespaces.push(ns)
    await nsExec(ns, ['ip', 'link', 'set', 'lo', 'up'])
    await nsExec(this.hub, ['ip', 'link', 'add', `v${i}`, ...this.mtuArgs, 'type', 'veth', 'peer', 'name', 'eth0', ...this.mtuArgs, 'netns', ns])
    await nsExec(this.hub, ['ip', 'link', 'set', `v${i}`, 'master', rackB ? 'br1' : 'br0', 'up'])
    if (this.hasIpv4) await nsExec(ns, ['ip', 'addr', 'add', `${node.underlayIp}/24`, 'dev', 'eth0'])
    if (this.hasIpv6) await nsExec(ns, ['ip', 'addr', 'add', `${node.underlayIp6}/64`, 'dev', 'eth0', 'nodad'])
    await nsExec(ns, ['ip', 'link', 'set', 'eth0', 'up'])
    if (this.opts.racks !== undefined) {
      // The other rack (and, from rack B, etcd) through this rack's router.
      const [far4, far6, gw4, gw6] = rackB
        ? ['192.0.2.0/24', '2001:db8::/64', '198.51.100.254', '2001:db8:1::fe']
        : ['198.51.100.0/24', '2001:db8:1::/64', '192.0.2.254', '2001:db8::fe']
      await nsExec(ns, ['ip', 'route', 'add', far4, 'via', gw4])
      await nsExec(ns, ['ip', '-6', 'route', 'add', far6, 'via', gw6])
    }
    if (this.etcdRoot !== undefined) node.credential = await this.nodeCredentials(node.name)
    this.nodes.push(node)
    this.everyNode.push(node)
    return node
  }

  /** Pings `ip` from namespace `ns` once; true when a reply came. */
  async ping (ns: string, ip: string, opts: { count?: number, timeoutS?: number, interval?: string } = {}): Promise<boolean> {
    const out = await nsExec(ns, ['ping', ...(ip.includes(':') ? ['-6'] : []), '-c', String(opts.count ?? 1), '-W', String(opts.timeoutS ?? 2),
      ...(opts.interval !== undefined ? ['-i', opts.interval] : []), ip], { allowFail: true })
    return / 0% packet loss/.test(out)
  }

  /** Every pod pings every other pod on every address; returns the failures ("a -> b ip"). */
  async podMatrix (opts: { timeoutS?: number } = {}): Promise<string[]> {
    const pods = this.nodes.flatMap(n => n.pods)
    const jobs = pods.flatMap(a => pods.filter(b => b !== a).flatMap(b => b.ips.map(ip => ({ a, b, ip }))))
    const failures: string[] = []
    await Promise.all(jobs.map(async j => { if (!await this.ping(j.a.ns, j.ip, opts)) failures.push(`${j.a.name} -> ${j.b.name} ${j.ip}`) }))
    return failures.sort()
  }

  /** Every node pings every remote pod. */
  async nodeMatrix (): Promise<string[]> {
    const failures: string[] = []
    const jobs = this.nodes.flatMap(n => this.nodes.filter(m => m !== n).flatMap(m => m.pods.flatMap(p => p.ips.map(ip => ({ n, p, ip })))))
    await Promise.all(jobs.map(async j => { if (!await this.ping(j.n.ns, j.ip)) failures.push(`${j.n.name} -> ${j.p.name} ${j.ip}`) }))
    return failures.sort()
  }

  async destroy (): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    for (const p of this.procs) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    }
    await sleep(100)
    // wireguard-go daemonizes away from us and outlives its namespace: end ours by PID.
    for (const n of this.everyNode) await killWireguardGo(n.wgIf)
    for (const pod of this.everyNode.flatMap(n => n.pods)) await sh('ip', ['netns', 'del', pod.ns], { allowFail: true })
    for (const ns of [...this.namespaces].reverse()) await sh('ip', ['netns', 'del', ns], { allowFail: true })
    rmSync(this.dir, { recursive: true, force: true })
  }
}

export async function killWireguardGo (ifname: string): Promise<void> {
  const out = await sh('pgrep', ['-f', `^wireguard-go ${ifname}$`], { allowFail: true })
  for (const pid of out.split('\n').map(Number).filter(n => n > 0)) {
    try { process.kill(pid, 'SIGTERM') } catch { /* already gone */ }
  }
  rmSync(`/var/run/wireguard/${ifname}.sock`, { force: true })
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

function tail (file: string, lines: number): string {
  try { return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n') } catch { return '(no log)' }
}

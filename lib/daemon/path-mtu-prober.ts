// Knows the path MTU toward each peer's underlay address (issue #12: a WAN link or a provider's
// 1400-byte segment narrower than the nodes' interfaces). A peer on the node's own link (the
// kernel routes to it without a next hop) carries the link's MTU: every host of an L2 segment
// must share its MTU, so it is not probed. A routed peer is probed with don't-fragment echoes
// (lib/dataplane/path-mtu-probe.ts) when it appears or its address changes, again every
// `intervalMs`, and sooner when the kernel has learned a smaller path MTU toward it from a
// router (checked on each resync by a route lookup: no process). At most `concurrency` probes
// run at once. Emits 'changed' when a peer's path MTU changes; the daemon re-plans, and the
// plan gives that peer's pod routes a smaller MTU. Emits, never logs.

import { EventEmitter } from 'node:events'
import type { PathMtuVerdict } from '../mesh/path-mtu-search'
import { discoverPathMtu } from '../dataplane/path-mtu-probe'
import type { Rtnl } from '../dataplane/rtnl'

export interface PathMtuProberOptions {
  rtnl: Pick<Rtnl, 'routeTo'>
  /** The MTU of the node's underlay interface now (it may move). */
  localMtu: () => number
  /** Re-probe each routed peer this often. Default 1 h. */
  intervalMs?: number
  /** Probes in flight at once. Default 2. */
  concurrency?: number
  /** Seconds to wait for each echo reply. Default 1. */
  waitSeconds?: number
  /** Route lookups per check (learned path MTUs). Default 64. */
  lookupsPerCheck?: number
}

/** What is known of one peer's path. */
export interface PeerPath {
  node: string
  ip: string
  /** On the node's own link: not probed, the link's MTU. */
  onLink: boolean
  /** The path MTU, when known. */
  mtu?: number
  /** Why it is not known (no echo reply, probe failed). */
  unknown?: string
  /** The path drops big packets without a "too big": found by bisection. */
  blackHole?: boolean
  /** The last probe could not run (no route, ping missing): why. Retried at the next interval. */
  failed?: string
  probedAt?: number
}

export interface PathMtuProberEvents {
  /** A peer's path MTU became known, changed, or became unknown. */
  changed: [PeerPath]
  /** A probe could not run (ping missing, no route): the peer's path stays as it was. */
  probeFailed: [{ node: string, ip: string, error: Error }]
}

export class PathMtuProber extends EventEmitter<PathMtuProberEvents> {
  private readonly o: Required<Omit<PathMtuProberOptions, 'rtnl' | 'localMtu'>> & Pick<PathMtuProberOptions, 'rtnl' | 'localMtu'>
  private readonly paths = new Map<string, PeerPath>()
  private readonly queue: string[] = []
  private readonly queued = new Set<string>()
  private running = 0
  private cursor = 0
  private stopped = false
  private idle: Array<() => void> = []
  private rev = 0

  constructor (o: PathMtuProberOptions) {
    super()
    this.o = { intervalMs: 3_600_000, concurrency: 2, waitSeconds: 1, lookupsPerCheck: 64, ...o }
  }

  /** The path of every peer whose MTU is known. */
  known (): ReadonlyMap<string, PeerPath> {
    return new Map([...this.paths].filter(([, p]) => p.mtu !== undefined))
  }

  get (node: string): PeerPath | undefined { return this.paths.get(node) }

  /** Grows whenever a peer's path is set or forgotten: equal revisions, equal `known()` (callers memoise on it). */
  get revision (): number { return this.rev }

  /**
   * The current peers (node → underlay address): new and moved peers are probed now, gone ones
   * forgotten. Cheap when nothing changed; call it with every desired state.
   */
  setPeers (peers: ReadonlyMap<string, string>): void {
    for (const node of [...this.paths.keys()]) if (!peers.has(node)) this.forget(node)
    for (const [node, ip] of peers) {
      const have = this.paths.get(node)
      if (have !== undefined && have.ip === ip) continue
      this.setPath({ node, ip, onLink: false })
      this.enqueue(node)
    }
  }

  /**
   * The resync's check: re-probe peers whose interval is up, and those toward which the kernel
   * learned a smaller path MTU than the one known — a route lookup each (no process), for at
   * most `lookupsPerCheck` routed peers per check, round robin, so a check stays cheap with
   * thousands of routed peers.
   */
  async check (now = Date.now()): Promise<void> {
    const routed = [...this.paths.values()].filter(p => !p.onLink)
    for (const p of routed) {
      if (!this.queued.has(p.node) && (p.probedAt === undefined || now - p.probedAt >= this.o.intervalMs)) this.enqueue(p.node)
    }
    const n = Math.min(routed.length, this.o.lookupsPerCheck)
    for (let i = 0; i < n; i++) {
      const p = routed[(this.cursor + i) % routed.length] as PeerPath
      if (this.queued.has(p.node) || p.probedAt === undefined) continue
      try {
        const learned = (await this.o.rtnl.routeTo(p.ip)).mtu
        if (learned !== undefined && (p.mtu === undefined || learned < p.mtu)) this.enqueue(p.node)
      } catch {}
    }
    this.cursor = routed.length === 0 ? 0 : (this.cursor + n) % routed.length
  }

  /** Resolves when no probe is queued or running (tests, and an orderly stop). */
  async settled (): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return
    await new Promise<void>(resolve => this.idle.push(resolve))
  }

  stop (): void {
    this.stopped = true
    this.queue.length = 0
    this.queued.clear()
    for (const r of this.idle.splice(0)) r()
  }

  private setPath (p: PeerPath): void {
    this.paths.set(p.node, p)
    this.rev++
  }

  private forget (node: string): void {
    this.paths.delete(node)
    this.rev++
  }

  private enqueue (node: string): void {
    if (this.stopped || this.queued.has(node)) return
    this.queued.add(node)
    this.queue.push(node)
    this.pump()
  }

  private pump (): void {
    while (!this.stopped && this.running < this.o.concurrency && this.queue.length > 0) {
      const node = this.queue.shift() as string
      this.running++
      void this.probe(node).finally(() => {
        this.running--
        this.queued.delete(node)
        this.pump()
        if (this.running === 0 && this.queue.length === 0) for (const r of this.idle.splice(0)) r()
      })
    }
  }

  private async probe (node: string): Promise<void> {
    const p = this.paths.get(node)
    if (p === undefined) return
    const ip = p.ip
    let next: PeerPath
    try {
      const route = await this.o.rtnl.routeTo(ip)
      if (route.gateway === undefined) {
        next = { node, ip, onLink: true, mtu: this.o.localMtu(), probedAt: Date.now() }
      } else {
        next = toPath(node, ip, await discoverPathMtu(ip, { localMtu: this.o.localMtu(), waitSeconds: this.o.waitSeconds }))
      }
    } catch (e) {
      // Tried again at the next interval, not on every resync; said once per distinct failure.
      const error = e instanceof Error ? e : new Error(String(e))
      const now = this.paths.get(node)
      if (this.stopped || now === undefined || now.ip !== ip) return
      this.setPath({ node, ip, onLink: false, failed: error.message, probedAt: Date.now() })
      if (now.failed !== error.message) this.emit('probeFailed', { node, ip, error })
      return
    }
    // The peer left or moved while it was probed: that result is about a path nobody uses.
    const now = this.paths.get(node)
    if (this.stopped || now === undefined || now.ip !== ip) return
    this.setPath(next)
    if (now.mtu !== next.mtu || now.unknown !== next.unknown || now.onLink !== next.onLink) this.emit('changed', next)
  }
}

function toPath (node: string, ip: string, v: PathMtuVerdict): PeerPath {
  const probedAt = Date.now()
  return v.kind === 'known'
    ? { node, ip, onLink: false, mtu: v.mtu, blackHole: v.blackHole, probedAt }
    : { node, ip, onLink: false, unknown: v.reason, probedAt }
}

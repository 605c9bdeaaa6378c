// WireGuard's text formats, both ways, pure: parse `wg show <if> dump`, and render the `wg`
// invocations that carry out a WireguardPlan. The kernel-facing side is device.ts.
//
// What `wg` does with what we render (wireguard-tools 1.0.20210914, checked against wireguard-go):
// - `wg set … peer K allowed-ips a,b` REPLACES the peer's allowed IPs (an empty string clears
//   them); it never appends. The same holds for every [Peer] section given to `wg addconf`, where
//   a section without an AllowedIPs line clears them (an empty `AllowedIPs =` line is a syntax
//   error, so it is left out).
// - `endpoint` overwrites the peer's endpoint; there is no way to clear one, so a plan peer with
//   endpoint '' leaves whatever the kernel holds (roaming may have learned one).
// - Updating an existing peer keeps its session: handshake, counters and keepalive timers
//   survive. Only `remove` (or re-creating the device) resets them.
// - `persistent-keepalive off` (or 0) disables it.
//
// How many processes an apply costs (the "one `wg` per apply" rule):
// - Normally ONE `wg set <if> [private-key F listen-port P] peer … remove … peer … endpoint …`.
// - When that argv would exceed ARGV_LIMIT bytes (about 5,000 peers; Linux allows 2 MB of argv
//   plus environment) or one argument would exceed the kernel's 128 KiB per-argument limit, the
//   upserts move into ONE `wg addconf <if> <file>` (the rendered [Peer] sections, written to a
//   0600 temp file: `wg` cannot fopen /dev/stdin when stdin is the socketpair Node gives a child),
//   and the private key, listen port and removals stay in `wg set` invocations (one per
//   ARGV_LIMIT bytes, so one unless tens of thousands of peers leave at once), run first.

import { canonicalCidr } from '../../ipam/cidr'
import type { ObservedWireguard, Peer, WireguardPlan } from '../../mesh/types'

/** Bytes of argv (strings, their NULs and pointers) above which the addconf form is used. */
export const ARGV_LIMIT = 1_000_000
/** The kernel's limit for one argument (MAX_ARG_STRLEN), with a margin. */
const ARG_LIMIT = 128 * 1024 - 1024

export interface WireguardDump {
  /** The device's public key; '' when no private key is set. (The private key is never kept.) */
  publicKey: string
  listenPort: number
  peers: ObservedWireguard['peers']
}

/**
 * One `wg` process to run: `wg ...args`; when `config` is present, it goes into a file whose
 * path is appended to args (`wg addconf <if> <file>`).
 */
export interface WgInvocation { args: string[], config?: string }

export class WireguardDumpError extends Error {
  readonly code = 'EWGDUMP'
  constructor (readonly line: number, message: string, cause?: unknown) {
    super(`wg dump line ${line}: ${message}`, cause === undefined ? undefined : { cause })
    this.name = 'WireguardDumpError'
  }
}
export const isWireguardDumpError = (e: unknown): e is WireguardDumpError => e instanceof WireguardDumpError

const none = (field: string): boolean => field === '(none)' || field === ''

function count (text: string, line: number, what: string): number {
  if (!/^\d+$/.test(text)) throw new WireguardDumpError(line, `${what} "${text}" is not a number`)
  return Number(text)
}

/** A peer line's configuration: everything but the handshake time and the byte counters. */
type PeerConfig = Pick<ObservedWireguard['peers'][number], 'publicKey' | 'endpoint' | 'allowedIps' | 'persistentKeepalive'>

function parsePeerConfig (f: readonly string[], n: number): PeerConfig {
  const [key, , endpoint, allowed, , , , keepalive] = f as [string, string, string, string, string, string, string, string]
  let allowedIps: string[]
  try {
    allowedIps = none(allowed) ? [] : allowed.split(',').map(canonicalCidr).sort()
  } catch (e) {
    throw new WireguardDumpError(n, `allowed IPs "${allowed}" malformed`, e)
  }
  // Shared between successive reads (DumpReader): frozen, so no reader can change another's view.
  Object.freeze(allowedIps)
  return {
    publicKey: key,
    endpoint: none(endpoint) ? '' : endpoint,
    allowedIps,
    persistentKeepalive: keepalive === 'off' ? 0 : count(keepalive, n, 'persistent keepalive')
  }
}

/**
 * The exact text of a peer line's configuration fields (public key, endpoint, allowed IPs,
 * keepalive), without the preshared key, the handshake time and the counters. Two lines with the
 * same text parse to the same configuration; it is the text itself, not a hash of it, so no two
 * different configurations can share it.
 */
const configText = (f: readonly string[]): string => `${f[0] ?? ''}\t${f[2] ?? ''}\t${f[3] ?? ''}\t${f[7] ?? ''}`

type ObservedPeer = ObservedWireguard['peers'][number]

function parsePeerLine (line: string, n: number, config: (fields: readonly string[]) => PeerConfig): ObservedPeer {
  const f = line.split('\t')
  if (f.length !== 8) throw new WireguardDumpError(n, `peer line has ${f.length} fields, want 8`)
  return {
    ...config(f),
    lastHandshake: count(f[4] as string, n, 'latest handshake'),
    rxBytes: count(f[5] as string, n, 'rx bytes'),
    txBytes: count(f[6] as string, n, 'tx bytes')
  }
}

/**
 * Reads `wg show <if> dump` again and again (the resync's), parsing only what changed since the
 * previous read. A peer line equal, character for character, to one of the previous read gives
 * back that read's peer object (frozen: successive observed states share it). A line that
 * differs only in its handshake time or counters — they move all the time on a live peer —
 * reuses the previous read's parsed configuration and reads just those three numbers. Any other
 * line is parsed afresh. The keys are the texts themselves, never a hash, so the result is
 * always what `parseDump` would return (up to the peers' order: the same set of lines in another
 * order gives back the previous read's array as it was): drift in any field is seen. Only the previous read is
 * kept (memory O(peers)); the interface line, which holds the private key, is never kept.
 * (A peer line holds a preshared key only where someone set one; podmesh sets none.)
 */
export class DumpReader {
  private lines = new Map<string, { peer: ObservedPeer, configKey: string, config: PeerConfig }>()
  private configs = new Map<string, PeerConfig>()
  private peers: ObservedPeer[] = []

  read (text: string): WireguardDump {
    // The same peer lines as the previous read, in any order (wireguard-go lists its peers in a
    // new order on every dump): the previous read's peer array is handed back as it was, so
    // that everything keyed on it (the planner's comparison, the status value's names) sees
    // no change, and nothing is rebuilt.
    let unchanged = true
    let count = 0
    const dump = parseDumpWith(text, line => {
      count++
      const seen = this.lines.get(line)
      if (seen === undefined) unchanged = false
      return seen?.peer
    })
    if (unchanged && count === this.lines.size && dump.peers.length === this.peers.length) return { ...dump, peers: this.peers }
    const lines: typeof this.lines = new Map()
    const configs: typeof this.configs = new Map()
    const fresh = parseDumpWith(text, (line, n) => {
      let seen = this.lines.get(line)
      if (seen === undefined) {
        let configKey = ''
        let config: PeerConfig | undefined
        const peer = Object.freeze(parsePeerLine(line, n, f => {
          configKey = configText(f)
          config = this.configs.get(configKey) ?? parsePeerConfig(f, n)
          return config
        }))
        seen = { peer, configKey, config: config as PeerConfig }
      }
      lines.set(line, seen)
      configs.set(seen.configKey, seen.config)
      return seen.peer
    })
    this.lines = lines
    this.configs = configs
    this.peers = fresh.peers
    return fresh
  }
}

/**
 * Parses `wg show <if> dump`: one tab-separated interface line (private key, public key, listen
 * port, fwmark), then one line per peer (public key, preshared key, endpoint, allowed IPs, latest
 * handshake, rx bytes, tx bytes, persistent keepalive). The private and preshared keys are dropped.
 */
export function parseDump (text: string): WireguardDump {
  return parseDumpWith(text, (line, n) => parsePeerLine(line, n, f => parsePeerConfig(f, n)))
}

/** `peer` may decline a line (undefined): the dump's peers are then incomplete, for a caller that only looks. */
function parseDumpWith<P extends ObservedPeer | undefined> (text: string, peer: (line: string, n: number) => P): { publicKey: string, listenPort: number, peers: Array<Exclude<P, undefined>> } {
  const lines = text.split('\n')
  let at = 0
  while (at < lines.length && (lines[at] as string).trim() === '') at++
  const head = lines[at]
  if (head === undefined) throw new WireguardDumpError(1, 'empty dump')
  const dev = head.split('\t')
  if (dev.length !== 4) throw new WireguardDumpError(1, `interface line has ${dev.length} fields, want 4`)
  const publicKey = none(dev[1] as string) ? '' : dev[1] as string
  const listenPort = count(dev[2] as string, 1, 'listen port')
  const peers: Array<Exclude<P, undefined>> = []
  for (let i = at + 1, n = 2; i < lines.length; i++) {
    const line = lines[i] as string
    if (line.trim() === '') continue
    const p = peer(line, n++)
    if (p !== undefined) peers.push(p as Exclude<P, undefined>)
  }
  return { publicKey, listenPort, peers }
}

const keepaliveArg = (s: number): string => (s === 0 ? 'off' : String(s))

function peerArgs (p: Peer): string[] {
  return [
    'peer', p.publicKey,
    ...(p.endpoint !== '' ? ['endpoint', p.endpoint] : []),
    'persistent-keepalive', keepaliveArg(p.persistentKeepalive),
    'allowed-ips', p.allowedIps.join(',')
  ]
}

const configureArgs = (plan: WireguardPlan, privateKeyFile: string): string[] =>
  plan.configure ? ['private-key', privateKeyFile, 'listen-port', String(plan.listenPort)] : []

const removeArgs = (keys: readonly string[]): string[] => keys.flatMap(k => ['peer', k, 'remove'])

/**
 * The argv (after `wg`) of the one `wg set` that carries out the plan's key/port and peer
 * changes: removals first (an allowed IP moving from a leaving peer to a new one ends up on the
 * new one either way, but this order never lets two peers claim it), then upserts.
 */
export function renderSetArgs (ifname: string, plan: WireguardPlan, privateKeyFile: string): string[] {
  return ['set', ifname, ...configureArgs(plan, privateKeyFile), ...removeArgs(plan.removePeers), ...plan.upsertPeers.flatMap(peerArgs)]
}

/** The `wg addconf` config for upserting peers ([Peer] sections only; keys stay out of it). */
export function renderAddconf (peers: readonly Peer[]): string {
  return peers.map(p => [
    '[Peer]',
    `PublicKey = ${p.publicKey}`,
    ...(p.endpoint !== '' ? [`Endpoint = ${p.endpoint}`] : []),
    `PersistentKeepalive = ${keepaliveArg(p.persistentKeepalive)}`,
    ...(p.allowedIps.length > 0 ? [`AllowedIPs = ${p.allowedIps.join(', ')}`] : [])
  ].join('\n')).join('\n\n') + '\n'
}

/** Bytes the kernel counts for an argv: each string, its NUL, and its pointer. */
export const argvBytes = (args: readonly string[]): number =>
  args.reduce((n, a) => n + Buffer.byteLength(a) + 1 + 8, 0)

const fitsArgv = (args: readonly string[]): boolean =>
  argvBytes(args) <= ARGV_LIMIT && args.every(a => Buffer.byteLength(a) <= ARG_LIMIT)

/**
 * The `wg` invocations for a plan, in order; [] when the plan has no key, port or peer change.
 * One invocation unless the plan is too large for one argv (see the header for the rule).
 */
export function renderInvocations (ifname: string, plan: WireguardPlan, privateKeyFile: string): WgInvocation[] {
  if (!plan.configure && plan.upsertPeers.length === 0 && plan.removePeers.length === 0) return []
  const one = renderSetArgs(ifname, plan, privateKeyFile)
  if (fitsArgv(one)) return [{ args: one }]
  const sets: WgInvocation[] = []
  let current = ['set', ifname, ...configureArgs(plan, privateKeyFile)]
  let size = argvBytes(current)
  let dirty = plan.configure
  for (const key of plan.removePeers) {
    const more = removeArgs([key])
    const moreSize = argvBytes(more)
    if (dirty && size + moreSize > ARGV_LIMIT) {
      sets.push({ args: current })
      current = ['set', ifname]
      size = argvBytes(current)
    }
    current.push(...more)
    size += moreSize
    dirty = true
  }
  if (dirty) sets.push({ args: current })
  if (plan.upsertPeers.length > 0) sets.push({ args: ['addconf', ifname], config: renderAddconf(plan.upsertPeers) })
  return sets
}

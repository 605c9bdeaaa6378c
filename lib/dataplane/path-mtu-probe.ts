// Measures the path MTU toward a peer's underlay address with don't-fragment echo requests
// (iputils `ping -M do`), driven by the pure search in lib/mesh/path-mtu-search.ts. A router on
// the path that cannot forward a probe answers "fragmentation needed" (IPv4) or "packet too
// big" (IPv6) naming its MTU, which ping reports, and which the kernel caches for the
// destination (a later probe is then refused locally with the same MTU); a path that drops big
// packets without a word is bisected, one second per silent probe. One ping process per probe:
// the common path needs one, a router's answer two.

import { nextPathMtuStep, type PathMtuVerdict, type Probe, type ProbeResult } from '../mesh/path-mtu-search'
import { isCommandError, run } from './exec'

export interface PathMtuProbeOptions {
  /** The MTU of the interface the path leaves by. */
  localMtu: number
  /** Seconds to wait for each echo reply. Default 1. */
  waitSeconds?: number
  /** Bisect a black hole down to this many bytes. Default 8 (the verdict is the lower bound). */
  granularity?: number
}

const family = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4)
/** IP header + ICMP echo header: ping's `-s` is the payload, the probe is the whole packet. */
const HEADERS = { 4: 28, 6: 48 } as const
const MIN_MTU = { 4: 576, 6: 1280 } as const

/** "Frag needed and DF set (mtu = 1400)", "Packet too big: mtu=1400", "message too long, mtu=1400" / "mtu: 1400". */
const MTU_REPORT = /(?:frag needed|too big|too long)[^\n]*?mtu\s*[=:]\s*(\d+)/i

/** Don't-fragment echoes of `size` bytes (whole IP packet) to `ip`: the first answer decides. */
export async function probeOnce (ip: string, size: number, waitSeconds = 1): Promise<ProbeResult> {
  const f = family(ip)
  // Two echoes 200 ms apart: one lost packet must not read as "too big" (a bisection would
  // then settle on a smaller MTU than the path has). ping exits 0 when any reply came.
  const args = [`-${f}`, '-n', '-M', 'do', '-c', '2', '-i', '0.2', '-W', String(waitSeconds), '-s', String(size - HEADERS[f]), ip]
  try {
    await run('ping', args, { timeoutMs: (waitSeconds + 5) * 1000 })
    return { kind: 'reply' }
  } catch (e) {
    if (!isCommandError(e) || e.exitCode === null) throw e
    const m = MTU_REPORT.exec(`${e.stdout}\n${e.stderr}`)
    if (m !== null) return { kind: 'tooBig', mtu: Number(m[1]) }
    // Exit 1: no reply. Exit 2: another error (no route, bad address): not a path MTU matter.
    if (e.exitCode === 1) return { kind: 'silent' }
    throw e
  }
}

/** The path MTU toward `ip` (a peer's underlay address), or why it is unknown. */
export async function discoverPathMtu (ip: string, o: PathMtuProbeOptions): Promise<PathMtuVerdict> {
  const f = family(ip)
  const search = { localMtu: o.localMtu, minMtu: MIN_MTU[f], granularity: o.granularity ?? 8 }
  const probes: Probe[] = []
  for (;;) {
    const step = nextPathMtuStep(search, probes)
    if ('verdict' in step) return step.verdict
    probes.push({ size: step.probe, result: await probeOnce(ip, step.probe, o.waitSeconds) })
  }
}

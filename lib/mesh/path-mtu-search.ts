// The search for the path MTU toward one peer's underlay address, as a pure function of the
// probes made so far: which packet size to send next with don't-fragment set, or the verdict.
// A probe is one echo request of a whole IP packet size; it comes back (`reply`), or a router
// (or the local stack, from its cache) says the packet is too big and names the MTU (`tooBig`),
// or nothing comes back (`silent`). The common path is one probe: the full interface MTU
// answers. A router's "too big" gives the answer in two. A path that drops big packets without
// a word (an ICMP black hole) is bisected between the largest size that answered and the
// smallest that did not, down to `granularity` bytes; a peer that answers no echo at all has
// an unknown path MTU (the caller keeps the interface's).

export type ProbeResult =
  | { kind: 'reply' }
  | { kind: 'tooBig', mtu: number }
  | { kind: 'silent' }

export interface Probe { size: number, result: ProbeResult }

export interface PathMtuSearch {
  /** The MTU of the interface the path leaves by: the largest size worth trying. */
  localMtu: number
  /** The family's floor: IPv4 576 (what every host must reassemble), IPv6 1280 (every link carries it). */
  minMtu: number
  /** A bisection stops when the answer is known to within this many bytes (the lower bound is taken). */
  granularity?: number
}

export type PathMtuVerdict =
  | { kind: 'known', mtu: number, probes: number, blackHole: boolean }
  | { kind: 'unknown', reason: string, probes: number }

export type PathMtuStep = { probe: number } | { verdict: PathMtuVerdict }

/** The next size to probe, or the verdict, given what the probes so far found. */
export function nextPathMtuStep (s: PathMtuSearch, probes: readonly Probe[]): PathMtuStep {
  const granularity = s.granularity ?? 1
  const n = probes.length
  if (n === 0) return { probe: s.localMtu }
  let hi = s.localMtu + 1 // smallest size known not to pass
  let hint: number | undefined // the smallest MTU a "too big" named
  let silent = false
  for (const p of probes) {
    if (p.result.kind === 'tooBig') {
      // The router says what passes: nothing above its MTU does. (An MTU below the family's
      // floor is not believed: forged or broken, it could otherwise shrink every tunnel.)
      const named = p.result.mtu >= s.minMtu ? p.result.mtu : undefined
      if (named !== undefined) hint = Math.min(hint ?? Infinity, named)
      hi = Math.min(hi, p.size, (named ?? Infinity) + 1)
    } else if (p.result.kind === 'silent') {
      silent = true
      hi = Math.min(hi, p.size)
    }
  }
  // The largest size that came back below every failure (a reply above one means the path
  // changed under the search: the failures, being evidence of a narrower path, win).
  const replies = probes.filter(p => p.result.kind === 'reply' && p.size < hi).map(p => p.size)
  const lo = replies.length > 0 ? Math.max(...replies) : undefined
  if (lo === s.localMtu) return { verdict: { kind: 'known', mtu: lo, probes: n, blackHole: false } }
  // A router named the MTU: try exactly that (once) before anything else.
  if (hint !== undefined && hint < hi && !probes.some(p => p.size === hint)) return { probe: hint }
  if (lo === undefined) {
    // Nothing came back yet. Try the floor once: silence there too means no echo at all.
    if (!probes.some(p => p.size === s.minMtu)) return { probe: s.minMtu }
    return { verdict: { kind: 'unknown', reason: `no echo reply even at ${s.minMtu} bytes`, probes: n } }
  }
  if (hi - lo <= granularity) return { verdict: { kind: 'known', mtu: lo, probes: n, blackHole: silent && hint === undefined } }
  return { probe: Math.floor((lo + hi) / 2) }
}

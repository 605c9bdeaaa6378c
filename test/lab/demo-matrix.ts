// The demo's first screen: waits until the pods can use their addresses, then pings every pod from
// every pod on every address, each pair with a short bounded retry, and renders the matrix and a
// summary with its duration. A pair that still fails after its last try is a real FAIL and shows.
//
// Why wait and retry at all: a pod's IPv6 address is unusable while duplicate address detection
// (DAD) runs ("tentative"), and the first packets to a new neighbour wait for neighbour discovery
// and, across nodes, a WireGuard handshake — on a loaded machine that can outlast one ping's
// timeout. The CNI config is not changed for the demo: what pods need is awaited instead.
import { type Lab, type LabPod, nsExec, sleep } from './cluster'

export interface MatrixOptions {
  /** Pings per address before it counts as FAIL (default 3). */
  attempts?: number
  /** One ping's reply timeout, in seconds (default 2). */
  timeoutS?: number
  /** Pause between the tries of one pair (default 500 ms). */
  retryDelayMs?: number
}

export interface PairResult { from: LabPod, to: LabPod, ip: string, ok: boolean, attempts: number }

export interface MatrixResult { pairs: PairResult[], ms: number }

/** Addresses of `dev` in `ns` that cannot be used yet: DAD still running (tentative) or failed. */
export async function unsettledAddresses (ns: string, dev: string): Promise<string[]> {
  const out = await nsExec(ns, ['ip', '-j', '-6', 'addr', 'show', 'dev', dev])
  const links = JSON.parse(out === '' ? '[]' : out) as Array<{ addr_info?: Array<{ local: string, tentative?: boolean, dadfailed?: boolean }> }>
  return links.flatMap(l => (l.addr_info ?? []).filter(a => a.tentative === true || a.dadfailed === true)
    .map(a => `${a.local}${a.dadfailed === true ? ' (DAD failed)' : ''}`))
}

/**
 * Waits until no pod's eth0 holds a tentative IPv6 address; resolves to the milliseconds that
 * took. An address whose DAD failed never settles: that is an error naming it, not a wait.
 */
export async function waitPodAddresses (lab: Lab, timeoutMs = 10_000): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    const open = (await Promise.all(lab.nodes.flatMap(n => n.pods).map(async p =>
      (await unsettledAddresses(p.ns, 'eth0')).map(a => `${p.name} ${a}`)))).flat()
    const failed = open.filter(a => a.endsWith('(DAD failed)'))
    if (failed.length > 0) throw new Error(`duplicate address detection failed: ${failed.join(', ')}`)
    if (open.length === 0) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`pod addresses still tentative after ${timeoutMs} ms: ${open.join(', ')}`)
    await sleep(100)
  }
}

/** Pings `ip` from `from` until a reply or `attempts` tries. */
async function pingPair (lab: Lab, from: LabPod, to: LabPod, ip: string, o: Required<MatrixOptions>): Promise<PairResult> {
  for (let attempt = 1; ; attempt++) {
    if (await lab.ping(from.ns, ip, { timeoutS: o.timeoutS })) return { from, to, ip, ok: true, attempts: attempt }
    if (attempt >= o.attempts) return { from, to, ip, ok: false, attempts: attempt }
    await sleep(o.retryDelayMs)
  }
}

/** Every pod to every other pod on each of its addresses, all pairs at once. */
export async function runMatrix (lab: Lab, opts: MatrixOptions = {}): Promise<MatrixResult> {
  const o = { attempts: 3, timeoutS: 2, retryDelayMs: 500, ...opts }
  const pods = lab.nodes.flatMap(n => n.pods)
  const t0 = Date.now()
  const pairs = await Promise.all(pods.flatMap(a => pods.filter(b => b !== a).flatMap(b => b.ips.map(async ip => await pingPair(lab, a, b, ip, o)))))
  return { pairs, ms: Date.now() - t0 }
}

/** Milliseconds as "3.4 s". */
export const formatSeconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/** The matrix as text: one row per source pod, one cell per target, "ok"/"FAIL" per family. */
export function renderMatrix (pods: readonly LabPod[], r: MatrixResult): string {
  const cell = (a: LabPod, b: LabPod): string => {
    if (a === b) return '-'
    return b.ips.map(ip => r.pairs.find(p => p.from === a && p.to === b && p.ip === ip)?.ok === true ? 'ok' : 'FAIL').join('/')
  }
  const lines = ['  from \\ to  ' + pods.map(p => p.name.padEnd(10)).join(' ')]
  for (const a of pods) lines.push(`  ${a.name.padEnd(11)}${pods.map(b => cell(a, b).padEnd(10)).join(' ')}`)
  return lines.map(l => l.trimEnd()).join('\n') + '\n'
}

/** "matrix: 60/60 ok in 3.4 s (2 answered on a retry)"; failures are named on lines of their own. */
export function matrixSummary (r: MatrixResult): string {
  const ok = r.pairs.filter(p => p.ok)
  const retried = ok.filter(p => p.attempts > 1).length
  let text = `matrix: ${ok.length}/${r.pairs.length} ok in ${formatSeconds(r.ms)}${retried > 0 ? ` (${retried} answered on a retry)` : ''}\n`
  for (const f of r.pairs.filter(p => !p.ok)) text += `  FAIL ${f.from.name} -> ${f.to.name} ${f.ip} (no reply to ${f.attempts} pings)\n`
  return text
}

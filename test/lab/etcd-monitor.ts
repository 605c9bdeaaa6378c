// Watching a lab through an etcd failover: continuous ping streams that report exactly which
// packets got no answer, and a /readyz sampler per node (every ~200 ms, run inside the node's
// namespace so no process is spawned per sample) that reports the longest not-ready stretch.
import { spawn, type ChildProcess } from 'node:child_process'
import type { Lab, LabNode } from './cluster'

export interface StreamResult { name: string, sent: number, lost: number[] }

/** A ping every `intervalS` from namespace `ns` until stop(); the last second is not judged (replies still in flight). */
export class PingStream {
  private readonly proc: ChildProcess
  private out = ''
  private readonly exited: Promise<void>
  constructor (lab: Lab, readonly name: string, ns: string, ip: string, intervalS = 0.05) {
    this.proc = spawn('ip', ['netns', 'exec', ns, 'ping', ...(ip.includes(':') ? ['-6'] : []), '-n', '-i', String(intervalS), '-W', '1', ip],
      { stdio: ['ignore', 'pipe', 'ignore'] })
    lab.track(this.proc)
    this.proc.stdout?.on('data', d => { this.out += String(d) })
    // 'close', not 'exit': the summary ping prints on SIGINT may still be in the pipe at 'exit'.
    this.exited = new Promise(resolve => this.proc.once('close', () => resolve()))
  }

  /** Sequence numbers answered so far. */
  answered (): Set<number> {
    return new Set([...this.out.matchAll(/icmp_seq=(\d+)/g)].map(m => Number(m[1])))
  }

  async stop (intervalS = 0.05): Promise<StreamResult> {
    this.proc.kill('SIGINT') // ping prints its summary and exits; the process is ping itself (ip netns exec execs it)
    await this.exited
    const m = /(\d+) packets transmitted/.exec(this.out)
    if (m === null) throw new Error(`${this.name}: ping output not understood: ${this.out.slice(-500)}`)
    const sent = Number(m[1])
    const judged = sent - Math.ceil(1 / intervalS) // the last second may still be in flight
    const ok = this.answered()
    const lost: number[] = []
    for (let seq = 1; seq <= judged; seq++) if (!ok.has(seq)) lost.push(seq)
    return { name: this.name, sent, lost }
  }
}

export interface ReadyStats { node: string, samples: number, longestNotReadyMs: number, notReady: string[] }

/** Samples a node's /readyz every ~200 ms from inside its namespace until stop(). */
export class ReadyzMonitor {
  private readonly proc: ChildProcess
  private buf = ''
  readonly samples: Array<{ at: number, code: string, body: string }> = []
  constructor (lab: Lab, readonly node: LabNode) {
    const url = `${node.metricsUrl}/readyz`
    const loop = `while :; do r=$(curl -s -m 1 -w ' %{http_code}' ${url} | tr '\\n' ' '); echo "$(date +%s%3N) $r"; sleep 0.2; done`
    this.proc = spawn('ip', ['netns', 'exec', node.ns, 'sh', '-c', loop], { stdio: ['ignore', 'pipe', 'ignore'] })
    lab.track(this.proc)
    this.proc.stdout?.on('data', d => {
      this.buf += String(d)
      const lines = this.buf.split('\n')
      this.buf = lines.pop() ?? ''
      for (const l of lines) {
        const m = /^(\d+) (.*?) ?(\d{3})$/.exec(l.trim())
        if (m !== null) this.samples.push({ at: Number(m[1]), body: m[2] ?? '', code: m[3] ?? '' })
      }
    })
  }

  stop (): ReadyStats {
    this.proc.kill('SIGKILL')
    let longest = 0
    let since: number | undefined
    const notReady = new Set<string>()
    for (const s of this.samples) {
      if (s.code === '200') {
        if (since !== undefined) longest = Math.max(longest, s.at - since)
        since = undefined
      } else {
        since ??= s.at
        notReady.add(`${s.code} ${s.body}`.trim().slice(0, 120))
      }
    }
    const last = this.samples.at(-1)
    if (since !== undefined && last !== undefined) longest = Math.max(longest, last.at - since)
    return { node: this.node.name, samples: this.samples.length, longestNotReadyMs: longest, notReady: [...notReady] }
  }
}

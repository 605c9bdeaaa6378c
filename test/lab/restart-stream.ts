// A ping stream across a podmeshd restart, and the proof that it spans the restart. The stream
// reports each reply's own timestamp (`ping -D`); the restarted daemon's first apply is its
// "data plane applied; ready" log line; the stream is stopped only once that line is there and a
// margin has passed. So "nothing lost across the restart" cannot pass on a stream that ended
// before the new daemon touched the kernel: the caller asserts firstReply < firstApply < lastReply.
import { spawn } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import { sleep, waitForValue, type LabNode } from './cluster'

export interface PingStreamResult {
  /** Echo requests ping sent (its summary line). */
  sent: number
  /** Replies received. */
  received: number
  /** Sequence numbers without a reply, before the last reply: losses. */
  lost: number[]
  /** Requests after the last reply: in flight when the stream was stopped, not counted as lost. */
  inFlight: number
  /** Epoch milliseconds of the first and the last reply, as ping stamped them. */
  firstReplyMs: number
  lastReplyMs: number
}

export interface PingStream {
  /** Interrupts ping (SIGINT: it prints its summary) and reads its output to the end. */
  stop: () => Promise<PingStreamResult>
}

/** Pings `ip` from namespace `ns` every `intervalS` seconds until stop(). */
export function startPingStream (ns: string, ip: string, intervalS: number): PingStream {
  const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-D', '-n', ...(ip.includes(':') ? ['-6'] : []), '-i', String(intervalS), '-W', '1', ip], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  p.stdout.on('data', d => { out += String(d) })
  p.stderr.on('data', d => { err += String(d) })
  // 'close', not 'exit': ping's summary may still be in the pipe when it exits.
  const closed = new Promise<void>((resolve, reject) => { p.once('error', reject); p.once('close', () => resolve()) })
  return {
    stop: async () => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGINT')
      await closed
      return parsePing(out, `ping ${ip} in ${ns}: ${err.trim()}`)
    }
  }
}

/** Reads `ping -D` output: every reply's sequence number and timestamp, and the summary. */
export function parsePing (out: string, context: string): PingStreamResult {
  const summary = /(\d+) packets transmitted, (\d+) received/.exec(out)
  if (summary === null) throw new Error(`${context}: output not understood: ${out.slice(-500)}`)
  const replies = [...out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+) /gm)].map(m => ({ ms: Number(m[1]) * 1000, seq: Number(m[2]) }))
  if (replies.length === 0) throw new Error(`${context}: no reply at all: ${out.slice(-500)}`)
  const seen = new Set(replies.map(r => r.seq))
  const last = Math.max(...seen)
  const lost: number[] = []
  for (let seq = 1; seq <= last; seq++) if (!seen.has(seq)) lost.push(seq)
  const sent = Number(summary[1])
  return {
    sent,
    received: Number(summary[2]),
    lost,
    inFlight: sent - last,
    firstReplyMs: Math.min(...replies.map(r => r.ms)),
    lastReplyMs: Math.max(...replies.map(r => r.ms))
  }
}

/** Where the node's log ends now: lines after this offset are written later. */
export const logOffset = (n: LabNode): number => { try { return statSync(n.logFile).size } catch { return 0 } }

/** The pino time (epoch ms) of the first "data plane applied; ready" after `offset` in the node's log. */
export function firstApplyAfter (n: LabNode, offset: number): number | undefined {
  let text: string
  try { text = readFileSync(n.logFile).subarray(offset).toString('utf8') } catch { return undefined }
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"data plane applied; ready"')) continue
    const time = (JSON.parse(line) as { time?: unknown }).time
    if (typeof time === 'number') return time
  }
  return undefined
}

export interface AcrossRestart {
  ping: PingStreamResult
  /** Epoch ms when `restart` began (the old daemon is stopped after this). */
  restartAt: number
  /** Epoch ms of the restarted daemon's first apply, from its log. */
  firstApplyMs: number
}

/**
 * Streams pings from `ns` to `ip` while `restart` restarts `node`'s podmeshd: starts the stream,
 * lets it run a second (the caller asserts it had replies before `restartAt`), runs `restart`, waits for the new daemon's first apply in its log,
 * lets the stream run `marginMs` more, and stops it.
 */
export async function pingAcrossRestart (node: LabNode, ns: string, ip: string, restart: () => Promise<void>,
  opts: { intervalS: number, marginMs?: number, applyTimeoutMs?: number }): Promise<AcrossRestart> {
  const stream = startPingStream(ns, ip, opts.intervalS)
  let stopped = false
  const stop = async (): Promise<PingStreamResult> => { stopped = true; return await stream.stop() }
  try {
    await sleep(1000)
    const offset = logOffset(node)
    const restartAt = Date.now()
    await restart()
    const firstApplyMs = await waitForValue(`${node.name}: the restarted podmeshd's first apply in its log`, opts.applyTimeoutMs ?? 60_000,
      async () => firstApplyAfter(node, offset))
    await sleep(opts.marginMs ?? 1000)
    return { ping: await stop(), restartAt, firstApplyMs }
  } finally {
    if (!stopped) await stream.stop().catch(() => undefined) // ending it is all that matters here
  }
}

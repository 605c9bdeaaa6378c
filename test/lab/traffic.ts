// Traffic the MTU lab tests send between lab namespaces: link MTUs as the kernel reports them,
// don't-fragment pings of an exact packet size, and iperf3 TCP transfers.

import { spawn } from 'node:child_process'
import { nsExec, sleep, type Lab } from './cluster'

export const linkMtu = async (ns: string, dev: string): Promise<number> =>
  (JSON.parse(await nsExec(ns, ['ip', '-j', 'link', 'show', 'dev', dev])) as Array<{ mtu: number }>)[0]?.mtu ?? NaN

/** IP + ICMP header bytes of an echo request: the ping payload is the packet size minus these. */
export const pingHeaders = (ip: string): number => ip.includes(':') ? 48 : 28

export interface DfPing { ok: boolean, out: string }

/**
 * Don't-fragment pings from `ns` to `ip` with IP packets of exactly `packetSize` bytes; ok when
 * every one was answered. `out` keeps what ping said (a local "message too long", or the
 * "Frag needed"/"Packet too big" a router on the way sent back).
 */
export async function dfPing (ns: string, ip: string, packetSize: number, count = 2): Promise<DfPing> {
  const args = ['ping', ...(ip.includes(':') ? ['-6'] : []), '-M', 'do', '-s', String(packetSize - pingHeaders(ip)), '-c', String(count), '-i', '0.2', '-W', '2', ip]
  const out = await new Promise<string>(resolve => {
    const p = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    p.stdout.on('data', d => { text += String(d) })
    p.stderr.on('data', d => { text += String(d) })
    p.on('close', () => resolve(text))
  })
  return { ok: new RegExp(` ${count} received, 0% packet loss`).test(out), out }
}

/** One iperf3 TCP transfer of `seconds` from the client namespace to a server bound at `serverIp`; Mbit/s received. */
export async function iperfMbps (lab: Lab, serverNs: string, serverIp: string, clientNs: string, seconds = 3): Promise<number> {
  const port = String(40000 + Math.floor(Math.random() * 10000))
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-B', serverIp, '-p', port], { stdio: 'ignore' })
  lab.track(server)
  try {
    for (let attempt = 0; ; attempt++) {
      await sleep(300) // the server binds its socket
      try {
        const out = await nsExec(clientNs, ['iperf3', '-c', serverIp, '-p', port, '-t', String(seconds), '-J'], { timeoutMs: (seconds + 20) * 1000 })
        const bps = (JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } } }).end?.sum_received?.bits_per_second
        if (bps === undefined) throw new Error(`iperf3 to ${serverIp}: no sum_received in ${out.slice(0, 300)}`)
        return bps / 1e6
      } catch (e) {
        if (attempt >= 2) throw e
      }
    }
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
  }
}

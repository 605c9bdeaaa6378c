// A loopback TCP proxy in front of etcd that a test can cut: pause() drops every connection and
// refuses new ones, so one client sees etcd vanish while others keep using it; freeze() silences
// the open connections without closing them, as a vanished source address does.
import { type Server, type Socket, createServer, connect } from 'node:net'
import type { Teardownable } from './etcd'

export class TcpProxy {
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private paused = false
  readonly port: number

  private constructor (server: Server, port: number) {
    this.server = server
    this.port = port
  }

  static async start (targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | undefined
    const server = createServer(client => {
      if (proxy === undefined || proxy.paused) { client.destroy(); return }
      const upstream = connect(targetPort, targetHost)
      proxy.sockets.add(client).add(upstream)
      const drop = (): void => {
        client.destroy(); upstream.destroy()
        proxy?.sockets.delete(client); proxy?.sockets.delete(upstream)
      }
      client.on('error', drop).on('close', drop)
      upstream.on('error', drop).on('close', drop)
      client.pipe(upstream).pipe(client)
    })
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()))
    const addr = server.address()
    proxy = new TcpProxy(server, typeof addr === 'object' && addr !== null ? addr.port : 0)
    return proxy
  }

  get endpoint (): string { return `http://127.0.0.1:${this.port}` }

  pause (): void {
    this.paused = true
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  resume (): void { this.paused = false }

  /** Open connections go silent — nothing forwarded, nothing closed — while new ones work. */
  freeze (): void {
    for (const s of this.sockets) { s.unpipe(); s.pause() }
  }

  async close (): Promise<void> {
    this.pause()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }
}

export async function startProxy (t: Teardownable, targetPort: number): Promise<TcpProxy> {
  const p = await TcpProxy.start(targetPort)
  t.teardown(async () => await p.close())
  return p
}

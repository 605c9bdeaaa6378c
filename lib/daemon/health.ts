// The HTTP endpoints of podmeshd: /healthz (the process answers), /readyz (the readiness rule,
// see docs/operations.md) and /metrics (Prometheus text).

import { createServer, type Server } from 'node:http'
import type { Registry } from 'prom-client'

export interface Readiness {
  ready: boolean
  /** Human-readable reason, shown in the /readyz body. */
  detail: string
}

export async function startHealthServer (address: string, opts: { readiness: () => Readiness, registry: Registry }): Promise<Server> {
  const colon = address.lastIndexOf(':')
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '')
  const port = Number(address.slice(colon + 1))
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
    } else if (path === '/readyz') {
      const r = opts.readiness()
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'text/plain' }).end(`${r.ready ? 'ready' : 'not ready'}: ${r.detail}\n`)
    } else if (path === '/metrics') {
      opts.registry.metrics().then(
        text => res.writeHead(200, { 'content-type': opts.registry.contentType }).end(text),
        (e: Error) => res.writeHead(500).end(e.message))
    } else {
      res.writeHead(404).end('not found\n')
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  return server
}

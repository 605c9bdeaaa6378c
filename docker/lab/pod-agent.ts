// The compose lab's pod agent: runs in each node container and answers, over the lab's
// underlay network, which pods (network namespaces) the node holds with their addresses, and
// pings from one of them (or from the node itself) on request. The check service drives the
// ping matrix through it, so every ping starts inside a real pod on a real node.
//
//   GET /pods                     -> { node, pods: [{ name, addresses: [ip, ...] }] }
//   GET /ping?from=<pod|node>&to=<ip> -> { ok, from, to, output }
//
// Env: LAB_NODE (this node's name), LAB_AGENT_PORT (9476).

import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { createServer, type ServerResponse } from 'node:http'
import { isIP } from 'node:net'

export interface PodInfo { name: string, addresses: string[] }
export interface PodsReply { node: string, pods: PodInfo[] }
export interface PingReply { ok: boolean, from: string, to: string, output: string }

const NETNS_DIR = '/run/netns'
const node = process.env.LAB_NODE ?? 'unknown'
const port = Number(process.env.LAB_AGENT_PORT ?? '9476')

interface ExecOutcome { code: number, output: string }
const run = async (file: string, args: string[], timeoutMs: number): Promise<ExecOutcome> =>
  await new Promise(resolve => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, output: `${stdout}${stderr}`.trim() })
    })
  })

async function podNames (): Promise<string[]> {
  try {
    return (await readdir(NETNS_DIR)).sort()
  } catch {
    return []
  }
}

/** The pod's global addresses on eth0, as the kernel reports them. */
async function podAddresses (pod: string): Promise<string[]> {
  const r = await run('ip', ['-j', '-n', pod, 'addr', 'show', 'dev', 'eth0'], 5000)
  if (r.code !== 0) return []
  const links = JSON.parse(r.output) as Array<{ addr_info?: Array<{ local: string, scope: string }> }>
  return links.flatMap(l => (l.addr_info ?? []).filter(a => a.scope === 'global').map(a => a.local))
}

async function ping (from: string, to: string): Promise<PingReply> {
  const pods = await podNames()
  if (isIP(to) === 0) return { ok: false, from, to, output: 'not an IP address' }
  if (from !== node && !pods.includes(from)) return { ok: false, from, to, output: `no pod ${from} on ${node}` }
  const pingArgs = ['-c', '1', '-W', '1', to]
  const r = from === node
    ? await run('ping', pingArgs, 5000)
    : await run('ip', ['netns', 'exec', from, 'ping', ...pingArgs], 5000)
  return { ok: r.code === 0, from, to, output: r.output.split('\n').slice(-2).join(' | ') }
}

function reply (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body) + '\n')
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://agent')
  const answer = async (): Promise<void> => {
    if (url.pathname === '/pods') {
      const pods = await Promise.all((await podNames()).map(async name => ({ name, addresses: await podAddresses(name) })))
      reply(res, 200, { node, pods } satisfies PodsReply)
    } else if (url.pathname === '/ping') {
      reply(res, 200, await ping(url.searchParams.get('from') ?? '', url.searchParams.get('to') ?? ''))
    } else {
      reply(res, 404, { error: `no route ${url.pathname}` })
    }
  }
  answer().catch(e => reply(res, 500, { error: (e as Error).message }))
})

server.listen(port, '0.0.0.0', () => {
  process.stdout.write(`pod-agent: ${node} listening on :${port}\n`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))

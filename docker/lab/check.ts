// The compose lab's one-shot check: waits until every node's pod agent reports its pods with
// addresses, runs the ping matrix (every pod, and every node, to every other node's pods, each
// address family), prints it and the topology as etcd holds it, and ends with one line
// `RESULT ok|fail` (exit 0 only for ok).
//
// Env: LAB_NODES (node1,node2,node3), LAB_PODS_PER_NODE (2), LAB_AGENT_PORT (9476),
//      LAB_WAIT_SECONDS (240: for the pods), LAB_CONVERGE_SECONDS (120: for every pair to answer),
//      LAB_ETCD (http://etcd:2379), LAB_PREFIX (/podmesh/).

import { execFile } from 'node:child_process'
import type { PingReply, PodsReply } from './pod-agent'

const nodes = (process.env.LAB_NODES ?? 'node1,node2,node3').split(',').filter(n => n !== '')
const podsPerNode = Number(process.env.LAB_PODS_PER_NODE ?? '2')
const port = Number(process.env.LAB_AGENT_PORT ?? '9476')
const waitMs = Number(process.env.LAB_WAIT_SECONDS ?? '240') * 1000
const convergeMs = Number(process.env.LAB_CONVERGE_SECONDS ?? '120') * 1000
const etcd = process.env.LAB_ETCD ?? 'http://etcd:2379'
const prefix = process.env.LAB_PREFIX ?? '/podmesh/'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const log = (line: string): void => { process.stdout.write(line + '\n') }

async function getJson<T> (node: string, path: string): Promise<T> {
  const res = await fetch(`http://${node}:${port}${path}`, { signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`${node}${path}: HTTP ${res.status}`)
  return await res.json() as T
}

/** Polls every agent until each reports LAB_PODS_PER_NODE pods that all have addresses. */
async function waitForPods (): Promise<PodsReply[]> {
  const deadline = Date.now() + waitMs
  let last = ''
  for (;;) {
    const replies = await Promise.all(nodes.map(async n => await getJson<PodsReply>(n, '/pods').catch((e: Error) => e)))
    const missing = replies.flatMap((r, i) => {
      if (r instanceof Error) return [`${nodes[i]}: ${r.message}`]
      const ready = r.pods.filter(p => p.addresses.length > 0).length
      return ready >= podsPerNode ? [] : [`${r.node}: ${ready}/${podsPerNode} pods ready`]
    })
    if (missing.length === 0) return replies as PodsReply[]
    const now = missing.join('; ')
    if (now !== last) { log(`waiting: ${now}`); last = now }
    if (Date.now() > deadline) throw new Error(`pods not ready after ${waitMs / 1000} s: ${now}`)
    await sleep(2000)
  }
}

interface Probe { srcNode: string, from: string, dstNode: string, dstPod: string, to: string, reply?: PingReply }

function probesFor (replies: PodsReply[]): Probe[] {
  const probes: Probe[] = []
  for (const src of replies) {
    const sources = [...src.pods.map(p => p.name), src.node]
    for (const from of sources) {
      for (const dst of replies) {
        for (const pod of dst.pods) {
          if (dst.node === src.node && (pod.name === from || from === src.node)) continue
          for (const to of pod.addresses) probes.push({ srcNode: src.node, from, dstNode: dst.node, dstPod: pod.name, to })
        }
      }
    }
  }
  return probes
}

/** Pings every probe; failed ones are retried until they pass or LAB_CONVERGE_SECONDS runs out. */
async function runMatrix (probes: Probe[]): Promise<void> {
  const deadline = Date.now() + convergeMs
  let pending = probes
  for (;;) {
    // One source node at a time per agent keeps each agent's load small; the nodes in parallel.
    await Promise.all(nodes.map(async n => {
      for (const p of pending.filter(q => q.srcNode === n)) {
        const q = `/ping?from=${encodeURIComponent(p.from)}&to=${encodeURIComponent(p.to)}`
        p.reply = await getJson<PingReply>(n, q).catch((e: Error) => ({ ok: false, from: p.from, to: p.to, output: e.message }))
      }
    }))
    pending = pending.filter(p => p.reply?.ok !== true)
    if (pending.length === 0 || Date.now() > deadline) return
    log(`${pending.length} of ${probes.length} pings not answered yet; retrying`)
    await sleep(2000)
  }
}

const family = (ip: string): string => (ip.includes(':') ? 'v6' : 'v4')

function printMatrix (replies: PodsReply[], probes: Probe[]): void {
  const targets = replies.flatMap(r => r.pods.map(p => `${r.node}/${p.name}`))
  const sources = replies.flatMap(r => [...r.pods.map(p => `${r.node}/${p.name}`), `${r.node}/(node)`])
  const width = Math.max(...targets.map(t => t.length), ...sources.map(t => t.length), 11)
  log('')
  log('ping matrix (row pings column; v4/v6 per cell, "-" = not probed)')
  log(`${''.padEnd(width)}  ${targets.map(t => t.padEnd(width)).join('  ')}`)
  for (const s of sources) {
    const [srcNode, srcName] = s.split('/') as [string, string]
    const cells = targets.map(t => {
      const [dstNode, dstPod] = t.split('/') as [string, string]
      const from = srcName === '(node)' ? srcNode : srcName
      const mine = probes.filter(p => p.srcNode === srcNode && p.from === from && p.dstNode === dstNode && p.dstPod === dstPod)
      if (mine.length === 0) return '-'.padEnd(width)
      return mine.map(p => `${family(p.to)}:${p.reply?.ok === true ? 'ok' : 'FAIL'}`).join(' ').padEnd(width)
    })
    log(`${s.padEnd(width)}  ${cells.join('  ')}`)
  }
  for (const p of probes.filter(q => q.reply?.ok !== true)) {
    log(`FAIL ${p.srcNode}/${p.from} -> ${p.dstNode}/${p.dstPod} ${p.to}: ${p.reply?.output ?? 'no reply'}`)
  }
}

async function printTopology (): Promise<void> {
  const out = await new Promise<string>(resolve => {
    execFile('etcdctl', ['--endpoints', etcd, 'get', '--prefix', prefix], { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve(err === null ? stdout : `etcdctl failed: ${err.message} ${stderr}`)
    })
  })
  log('')
  log(`topology: etcdctl get --prefix ${prefix}`)
  log(out.trim() === '' ? '(no keys)' : out.trimEnd())
}

async function main (): Promise<number> {
  const replies = await waitForPods()
  for (const r of replies) {
    log(`${r.node}: ${r.pods.map(p => `${p.name} ${p.addresses.join(' ')}`).join('; ')}`)
  }
  const probes = probesFor(replies)
  await runMatrix(probes)
  printMatrix(replies, probes)
  await printTopology()
  const failed = probes.filter(p => p.reply?.ok !== true).length
  log('')
  log(`RESULT ${failed > 0 ? 'fail' : 'ok'} (${probes.length - failed}/${probes.length} pings answered)`)
  return failed > 0 ? 1 : 0
}

main().then(code => { process.exitCode = code }, (e: Error) => {
  log(`RESULT fail (${e.message})`)
  process.exitCode = 1
})

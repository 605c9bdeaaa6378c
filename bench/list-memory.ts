// List memory under a hostile store (issue #10): a real etcd holding 300 MiB of junk values
// (300 × 1 MiB under nodes/, between 100 valid records), and the NodeWatcher's first list:
// its time and the process's peak RSS above the baseline while it runs (sampled every 5 ms).
// Compared against one unpaged read of the same prefix, which is what the list did before
// paging. Prints figures; never fails on them.
//
//   npm run -s bench:list-memory [-- --junk-mib 300] [--json]
import { EtcdProcess } from '../test/harness/etcd'
import { connectStore } from '../lib/store/client'
import { NodeWatcher, LIST_PAGE } from '../lib/store/node-watch'
import { nodesPrefix, prefixEnd } from '../lib/store/keys'
import { SCALE_CONFIG, syntheticNode, putNodes } from './synthetic'
import { printReport, ms, now, type Row } from './report'
import { runInNetns } from './netns-run'
import { sized } from './smoke'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const JUNK_MIB = Number(arg('--junk-mib', sized('300', '8')))
const PREFIX = '/podmesh/bench-list/'
const MIB = 1024 * 1024

/** Runs `f`, sampling RSS every 5 ms; returns its result, duration and peak RSS above the start. */
async function peakRss<T> (f: () => Promise<T>): Promise<{ result: T | Error, ms: number, peakMiB: number }> {
  global.gc?.()
  const base = process.memoryUsage().rss
  let peak = base
  const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 5)
  const t0 = now()
  let result: T | Error
  try { result = await f() } catch (e) { result = e as Error }
  const took = ms(t0)
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage().rss)
  return { result, ms: took, peakMiB: (peak - base) / MIB }
}

async function inner (): Promise<void> {
  const etcd = await EtcdProcess.create()
  const client = await connectStore({ endpoints: etcd.endpoints } as Parameters<typeof connectStore>[0])
  try {
    const nodes = Array.from({ length: 100 }, (_, i) => syntheticNode(i + 1))
    await putNodes(client, PREFIX, nodes)
    const junk = Buffer.alloc(MIB, 'x')
    process.stderr.write(`list-memory: writing ${JUNK_MIB} MiB of junk…\n`)
    for (let i = 0; i < JUNK_MIB; i += 4) {
      await Promise.all(Array.from({ length: Math.min(4, JUNK_MIB - i) }, async (_, j) =>
        await client.put(`${PREFIX}nodes/junk-${String(i + j).padStart(5, '0')}`).value(junk)))
    }
    const rows: Row[] = []
    let rejected = 0
    const w = new NodeWatcher({ client, prefix: PREFIX, config: SCALE_CONFIG, coalesceMs: 2 })
    w.on('rejected', () => { rejected++ })
    const paged = await peakRss(async () => { await w.start(); return w.current().size })
    await w.stop()
    rows.push({ metric: `paged list (${LIST_PAGE} keys/page): time`, value: paged.ms, unit: 'ms' })
    rows.push({ metric: 'paged list: peak RSS above baseline', value: paged.peakMiB, unit: 'MiB', note: `${String(paged.result)} valid nodes, ${rejected} values rejected` })
    const np = nodesPrefix(PREFIX)
    const unpaged = await peakRss(async () => (await client.kv.range({ key: Buffer.from(np), range_end: prefixEnd(np) })).kvs.length)
    rows.push({ metric: 'unpaged read (before): time', value: unpaged.ms, unit: 'ms' })
    rows.push({ metric: 'unpaged read (before): peak RSS above baseline', value: unpaged.peakMiB, unit: 'MiB', note: unpaged.result instanceof Error ? `failed: ${unpaged.result.message.slice(0, 80)}` : `${unpaged.result} keys` })
    printReport('list-memory', rows, { junkMiB: JUNK_MIB, validNodes: nodes.length, listPage: LIST_PAGE })
  } finally {
    client.close()
    await etcd.destroy()
  }
}

if (process.argv.includes('--inner')) {
  inner().then(() => process.exit(0), e => { process.stderr.write(`list-memory: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })
} else {
  runInNetns(__filename, process.argv.slice(2)).then(code => process.exit(code), e => { process.stderr.write(`${String(e)}\n`); process.exit(1) })
}

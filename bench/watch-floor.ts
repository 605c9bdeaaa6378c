// The etcd part of the convergence floor: put → watch delivery on one etcd3 client, measured
// where the daemons' etcd runs (spawned in the lab's hub namespace by convergence.ts).
// Prints one JSON line: {"samples":[ms,…]}.
import { Etcd3 } from 'etcd3'
import { percentile } from './report'

async function main (): Promise<void> {
  const endpoint = process.argv[2] ?? 'http://127.0.0.1:2379'
  const client = new Etcd3({ hosts: [endpoint] })
  const key = `/bench/watch-floor/${process.pid}`
  const watcher = await client.watch().key(key).create()
  const samples: number[] = []
  for (let i = 0; i < 30; i++) {
    const got = new Promise<void>(resolve => watcher.once('put', () => resolve()))
    const t = process.hrtime.bigint()
    await client.put(key).value(String(i))
    await got
    samples.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  await watcher.cancel()
  await client.delete().key(key)
  client.close()
  process.stdout.write(JSON.stringify({ samples, p50: percentile(samples, 50) }) + '\n')
}
main().catch(e => { process.stderr.write(String(e) + '\n'); process.exit(1) })

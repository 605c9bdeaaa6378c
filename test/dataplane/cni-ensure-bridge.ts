// Test fixture, run inside a test's network namespace (the netlink package acts on the netns of
// the process): applies ensureBridge for each spec in argv[2] (a JSON array) in order and prints
// one JSON line: per spec, the change or the error's code and reason.

import { ensureBridge, isBridgeError, type BridgeSpec } from '../../lib/dataplane/cni/bridge'
import { Rtnl } from '../../lib/dataplane/rtnl'

async function main (): Promise<void> {
  const specs = JSON.parse(process.argv[2] ?? '[]') as BridgeSpec[]
  const rtnl = Rtnl.open()
  const out: unknown[] = []
  try {
    for (const spec of specs) {
      try {
        out.push({ change: await ensureBridge(rtnl, spec) })
      } catch (e) {
        if (!isBridgeError(e)) throw e
        out.push({ error: { code: e.code, reason: e.reason, message: e.message } })
      }
    }
  } finally {
    rtnl.close()
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(e => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
})

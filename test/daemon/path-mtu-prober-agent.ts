// Test fixture, an agent inside a namespace (test/harness/netns.ts serveRequests): one
// PathMtuProber on the namespace's real kernel, driven by requests; every 'changed' event is
// recorded.
import { PathMtuProber, type PeerPath } from '../../lib/daemon/path-mtu-prober'
import { Rtnl } from '../../lib/dataplane/rtnl'
import { serveRequests } from '../harness/netns'

const rtnl = Rtnl.open()
let localMtu = Number(process.argv[2] ?? '1500')
const prober = new PathMtuProber({ rtnl, localMtu: () => localMtu, intervalMs: Number(process.argv[3] ?? '3600000') })
const changes: PeerPath[] = []
prober.on('changed', p => changes.push(p))
const failures: string[] = []
prober.on('probeFailed', f => failures.push(`${f.node}: ${f.error.message}`))

serveRequests({
  setPeers: async (a: Record<string, string>) => { prober.setPeers(new Map(Object.entries(a))); await prober.settled() },
  check: async () => { await prober.check(); await prober.settled() },
  known: async () => Object.fromEntries(prober.known()),
  revision: async () => prober.revision,
  changes: async () => changes.splice(0),
  failures: async () => failures.splice(0),
  localMtu: async (a: { mtu: number }) => { localMtu = a.mtu }
})

// Test fixture, run inside a namespace: discovers the path MTU to argv[2] (a local MTU of
// argv[3]) and prints the verdict as JSON.
import { discoverPathMtu } from '../../lib/dataplane/path-mtu-probe'

const [ip, localMtu] = process.argv.slice(2)
discoverPathMtu(ip ?? '', { localMtu: Number(localMtu) }).then(
  v => { process.stdout.write(JSON.stringify(v) + '\n') },
  e => { process.stderr.write(String(e instanceof Error ? e.message : e) + '\n'); process.exit(1) }
)

// Test fixture, run inside a namespace. `discover IP MTU`: the path-MTU verdict toward IP (a
// local MTU of MTU); `route IP`: the kernel's route lookup for IP. Prints JSON.
import { discoverPathMtu } from '../../lib/dataplane/path-mtu-probe'
import { Rtnl } from '../../lib/dataplane/rtnl'

const [what, ip, localMtu] = process.argv.slice(2)
const work = async (): Promise<unknown> => {
  if (what === 'route') {
    const rtnl = Rtnl.open()
    try { return await rtnl.routeTo(ip ?? '') } finally { rtnl.close() }
  }
  return await discoverPathMtu(ip ?? '', { localMtu: Number(localMtu) })
}
work().then(
  v => { process.stdout.write(JSON.stringify(v) + '\n') },
  e => { process.stderr.write(String(e instanceof Error ? e.message : e) + '\n'); process.exit(1) }
)

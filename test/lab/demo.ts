// The README's demo: `scripts/lab up` builds a 3-node netns lab with 2 pods per node, prints
// the pod-to-pod ping matrix and the etcd layout, and leaves it running; `scripts/lab down`
// removes it. State is kept in /run/podmesh-lab.json so `down` ends only what `up` started.
import { readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs'
import { Lab, type LabState } from './cluster'

const STATE = '/run/podmesh-lab.json'

async function up (backend: 'wireguard' | 'vxlan'): Promise<void> {
  if (existsSync(STATE)) throw new Error(`a demo lab is already up (${STATE}); run scripts/lab down first`)
  const lab = await Lab.create({ nodes: 3, podsPerNode: 2, backend, dualStack: true })
  try {
    const pods = lab.nodes.flatMap(n => n.pods)
    await new Promise(resolve => setTimeout(resolve, 500))
    console.log(`podmesh demo lab ${lab.id}: ${lab.nodes.length} nodes, ${pods.length} pods, backend ${backend}\n`)
    for (const p of pods) console.log(`  ${p.name.padEnd(10)} netns ${p.ns.padEnd(12)} ${p.ips.join('  ')}`)
    console.log('\nping matrix (IPv4 / IPv6):')
    console.log('  from \\ to  ' + pods.map(p => p.name.padEnd(10)).join(' '))
    for (const a of pods) {
      const cells = await Promise.all(pods.map(async b => {
        if (a === b) return '-'.padEnd(10)
        const [v4, v6] = await Promise.all(b.ips.map(async ip => await lab.ping(a.ns, ip)))
        return `${v4 === true ? 'ok' : 'FAIL'}/${v6 === true ? 'ok' : 'FAIL'}`.padEnd(10)
      }))
      console.log(`  ${a.name.padEnd(11)}${cells.join(' ')}`)
    }
    console.log('\netcd layout (etcdctl get --prefix /podmesh/):')
    console.log((await lab.etcdctl('get', '--prefix', '/podmesh/')).trim().split('\n').map(l => `  ${l}`).join('\n'))
    console.log(`\nTry: ip netns exec ${pods[0]!.ns} ping ${pods[pods.length - 1]!.ips[0]}`)
    console.log(`     ip netns exec ${lab.nodes[0]!.ns} wg show`)
    console.log(`     ip netns exec ${lab.hub} env ETCDCTL_API=3 etcdctl --endpoints ${lab.etcdUrl} get --prefix /podmesh/`)
    console.log('Tear down with: scripts/lab down')
  } catch (e) {
    await lab.destroy()
    throw e
  }
  writeFileSync(STATE, JSON.stringify(lab.detach(), null, 2))

}

async function down (): Promise<void> {
  if (!existsSync(STATE)) { console.log('no demo lab is up'); return }
  const s = JSON.parse(readFileSync(STATE, 'utf8')) as LabState
  await Lab.destroyDetached(s)
  rmSync(STATE, { force: true })
  console.log(`demo lab ${s.id} removed`)
}

const [cmd, backend] = process.argv.slice(2)
const run = cmd === 'up' ? up(backend === 'vxlan' ? 'vxlan' : 'wireguard') : cmd === 'down' ? down() : Promise.reject(new Error('usage: scripts/lab up [wireguard|vxlan] | down'))
run.then(() => process.exit(0), e => { console.error(`lab: ${(e as Error).message}`); process.exit(1) })

// The README's demo: `scripts/lab up` builds a 3-node netns lab with 2 pods per node, waits until
// the pods can use their addresses, prints the pod-to-pod ping matrix (each pair retried a few
// times before it counts as FAIL, demo-matrix.ts), how long it took, and the etcd layout, and
// leaves the lab running; `scripts/lab down` removes it. State is kept in /run/podmesh-lab.json
// (PODMESH_LAB_STATE overrides it) so `down` ends only what `up` started.
import { readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { Lab, ROOT, type LabState } from './cluster'
import { formatSeconds, matrixSummary, renderMatrix, runMatrix, waitPodAddresses } from './demo-matrix'

const STATE = process.env.PODMESH_LAB_STATE ?? '/run/podmesh-lab.json'
const USAGE = `usage: scripts/lab up [wireguard|vxlan] | down

  up     3 nodes (network namespaces) with 2 pods each, IPv4 and IPv6; prints the ping matrix,
         its duration and the time from start to a full matrix, and the etcd layout; the lab
         stays up. Exit 1 if a pair still fails after its retries (the lab stays up to look at).
  down   removes the lab that up started (its processes by PID, its namespaces, its files)

environment: PODMESH_LAB_STATE      where up records the lab for down (default /run/podmesh-lab.json)
             PODMESH_LAB_SKIP_DEPS  1: up skips scripts/install-deps (already installed and built)
`

/** When `scripts/lab up` started (it sets PODMESH_LAB_STARTED before installing and building), else now. */
const started = (): number => {
  const t = Number(process.env.PODMESH_LAB_STARTED)
  return Number.isFinite(t) && t > 0 ? t : Date.now()
}

async function up (backend: 'wireguard' | 'vxlan'): Promise<number> {
  const t0 = started()
  const tLab = Date.now()
  if (existsSync(STATE)) throw new Error(`a demo lab is already up (${STATE}); run scripts/lab down first`)
  const lab = await Lab.create({ nodes: 3, podsPerNode: 2, backend, dualStack: true })
  let failures: number
  try {
    const tReady = Date.now()
    const pods = lab.nodes.flatMap(n => n.pods)
    console.log(`podmesh demo lab ${lab.id}: ${lab.nodes.length} nodes, ${pods.length} pods, backend ${backend}\n`)
    for (const p of pods) console.log(`  ${p.name.padEnd(10)} netns ${p.ns.padEnd(12)} ${p.ips.join('  ')}`)
    const dadMs = await waitPodAddresses(lab)
    const matrix = await runMatrix(lab)
    failures = matrix.pairs.filter(p => !p.ok).length
    console.log('\nping matrix (IPv4 / IPv6):')
    process.stdout.write(renderMatrix(pods, matrix))
    process.stdout.write(matrixSummary(matrix))
    console.log(`up: ${failures === 0 ? 'full matrix' : 'matrix done'} ${formatSeconds(Date.now() - t0)} after start ` +
      `(install check and build ${formatSeconds(tLab - t0)}, lab ${formatSeconds(tReady - tLab)}, ` +
      `pod addresses ${formatSeconds(dadMs)}, matrix ${formatSeconds(matrix.ms)})`)
    console.log('\netcd layout (etcdctl get --prefix /podmesh/):')
    console.log((await lab.etcdctl('get', '--prefix', '/podmesh/')).trim().split('\n').map(l => `  ${l}`).join('\n'))
    console.log(`\nTry: ip netns exec ${pods[0]!.ns} ping ${pods[pods.length - 1]!.ips[0]}`)
    console.log(`     ip netns exec ${lab.nodes[0]!.ns} wg show`)
    console.log(`     ip netns exec ${lab.hub} env ETCDCTL_API=3 etcdctl --endpoints ${lab.etcdUrl} get --prefix /podmesh/`)
    console.log(`     ip netns exec ${lab.hub} node ${join(ROOT, 'dist', 'cmd', 'podmeshctl.js')} --etcd-endpoints ${lab.etcdUrl} status -w`)
    console.log('Tear down with: scripts/lab down')
  } catch (e) {
    await lab.destroy()
    throw e
  }
  writeFileSync(STATE, JSON.stringify(lab.detach(), null, 2))
  if (failures > 0) {
    console.error(`lab: ${failures} ping pair(s) failed after their retries; the lab stays up to look at (scripts/lab down removes it)`)
    return 1
  }
  return 0
}

async function down (): Promise<number> {
  if (!existsSync(STATE)) { console.log('no demo lab is up'); return 0 }
  const s = JSON.parse(readFileSync(STATE, 'utf8')) as LabState
  await Lab.destroyDetached(s)
  rmSync(STATE, { force: true })
  console.log(`demo lab ${s.id} removed`)
  return 0
}

const [cmd, backend] = process.argv.slice(2)
if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
  process.stdout.write(USAGE)
  process.exit(0)
}
const run = cmd === 'up' && (backend === undefined || backend === 'wireguard' || backend === 'vxlan')
  ? up(backend ?? 'wireguard')
  : cmd === 'down' ? down() : Promise.reject(new Error(`unknown arguments "${process.argv.slice(2).join(' ')}"\n${USAGE}`))
run.then(code => process.exit(code), e => { console.error(`lab: ${(e as Error).message}`); process.exit(1) })

// Data-plane benchmark (issue #6, item 5) in the netns lab (test/lab/cluster.ts): pod-to-pod TCP
// throughput (iperf3, -t 5) through the tunnel podmesh built between 2 nodes, against the same
// kind of tunnel built by hand between two namespaces on the same underlay bridge (wireguard-go
// configured with `wg set`, or a vxlan device with a static all-zeros FDB entry), against a plain
// veth pair between two namespaces. Like for like: the hand-built ends also have a "pod" behind
// a bridge and a veth of the tunnel's MTU, forwarded by the end's namespace, as CNI's bridge
// plugin sets a pod up, so pod→pod compares with pod→pod; and the tunnel alone compares
// node→node (podmesh: node namespace → the remote node's tunnel address) with end→end.
// Rounds are interleaved (podmesh, hand-built, veth, …) so that load from other processes hits
// every path alike; each path reports its best round.
// Then the MTU: the pod's eth0 MTU, a don't-fragment ping of exactly that size to the remote pod
// passes and one byte more fails, the tunnel device is underlay − 80 (wg) / − 50 (vxlan), and
// the nodes created no IP fragments during the run (/proc/net/snmp FragCreates).
//
//   npm run -s bench:dataplane [-- --backend vxlan] [--rounds 3] [--seconds 5] [--json]
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Lab, nsExec, sh, sleep, killWireguardGo, type LabNode } from '../test/lab/cluster'
import { printReport, type Row } from './report'
import { sized } from './smoke'
import { tunnelOverhead } from '../lib/mesh/mtu'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const BACKEND = arg('--backend', 'wireguard') === 'vxlan' ? 'vxlan' : 'wireguard'
const ROUNDS = Number(arg('--rounds', sized('3', '1')))
const SECONDS = Number(arg('--seconds', sized('5', '1')))
// The lab's underlay is IPv4: the overhead podmesh computes for an IPv4 outer header.
const OVERHEAD = { wireguard: tunnelOverhead('wireguard', 4), vxlan: tunnelOverhead('vxlan', 4) } as const

/** Two ends of one measured path: the server's namespace and address, the client's namespace. */
interface Path { name: string, serverNs: string, serverIp: string, clientNs: string }

/** One iperf3 TCP run from client to server; Mbit/s received. The server serves one test and exits. */
async function iperf (p: Path, servers: ChildProcess[]): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', p.serverNs, 'iperf3', '-s', '-1', '-B', p.serverIp], { stdio: 'ignore' })
  servers.push(server)
  try {
    for (let attempt = 0; ; attempt++) {
      await sleep(200) // the server binds its socket
      try {
        const out = await nsExec(p.clientNs, ['iperf3', '-c', p.serverIp, '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 })
        const j = JSON.parse(out) as { end?: { sum_received?: { bits_per_second?: number } } }
        const bps = j.end?.sum_received?.bits_per_second
        if (bps === undefined) throw new Error(`iperf3 ${p.name}: no sum_received in ${out.slice(0, 300)}`)
        return bps / 1e6
      } catch (e) {
        if (attempt >= 3) throw e
      }
    }
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
  }
}

const linkMtu = async (ns: string, dev: string): Promise<number> =>
  (JSON.parse(await nsExec(ns, ['ip', '-j', 'link', 'show', 'dev', dev])) as Array<{ mtu: number }>)[0]?.mtu ?? NaN

/** IPv4 + IPv6 fragments created by the namespace's stack so far. */
async function fragCreates (ns: string): Promise<number> {
  const snmp = await nsExec(ns, ['cat', '/proc/net/snmp', '/proc/net/snmp6'])
  const lines = snmp.split('\n')
  const head = lines.find(l => l.startsWith('Ip: Forwarding'))?.split(/\s+/) ?? []
  const vals = lines.filter(l => l.startsWith('Ip: ')).find(l => !l.startsWith('Ip: Forwarding'))?.split(/\s+/) ?? []
  const v4 = Number(vals[head.indexOf('FragCreates')] ?? 0)
  const v6 = Number(/Ip6FragCreates\s+(\d+)/.exec(snmp)?.[1] ?? 0)
  return v4 + v6
}

/** A namespace on the lab's underlay bridge with address 192.0.2.<host>/24 on its eth0. */
async function underlayNs (lab: Lab, suffix: string, host: number): Promise<string> {
  const ns = `${lab.id}${suffix}`
  await sh('ip', ['netns', 'add', ns])
  lab.namespaces.push(ns) // lab.destroy() removes it
  await nsExec(ns, ['ip', 'link', 'set', 'lo', 'up'])
  await nsExec(lab.hub, ['ip', 'link', 'add', suffix, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
  await nsExec(lab.hub, ['ip', 'link', 'set', suffix, 'master', 'br0', 'up'])
  await nsExec(ns, ['ip', 'addr', 'add', `192.0.2.${host}/24`, 'dev', 'eth0'])
  await nsExec(ns, ['ip', 'link', 'set', 'eth0', 'up'])
  return ns
}

interface HandEnd { ns: string, underlay: string, ifname: string, ip: string, podSubnet: string, podNs: string }

/** The hand-built tunnel between two underlay namespaces, a pod behind each; returns end→end and pod→pod paths. */
async function handTunnel (lab: Lab, ends: HandEnd[]): Promise<{ tunnel: Path, pods: Path }> {
  const [a, b] = ends as [HandEnd, HandEnd]
  const mtu = 1500 - OVERHEAD[BACKEND]
  const gw = (e: HandEnd): string => e.podSubnet.replace(/0\/24$/, '1')
  const podIp = (e: HandEnd): string => e.podSubnet.replace(/0\/24$/, '2')
  if (BACKEND === 'wireguard') {
    const keys = await Promise.all(ends.map(async e => {
      const priv = (await sh('wg', ['genkey'])).trim()
      const pub = (await sh('wg', ['pubkey'], { input: priv })).trim()
      const file = join(lab.dir, `${e.ifname}.key`)
      writeFileSync(file, priv + '\n', { mode: 0o600 })
      return { file, pub }
    }))
    for (const [i, e] of ends.entries()) {
      const peer = ends[1 - i] as typeof e
      await nsExec(e.ns, ['wireguard-go', e.ifname])
      await nsExec(e.ns, ['wg', 'set', e.ifname, 'private-key', keys[i]?.file ?? '', 'listen-port', '51820',
        'peer', keys[1 - i]?.pub ?? '', 'endpoint', `${peer.underlay}:51820`, 'allowed-ips', `${peer.ip}/32,${peer.podSubnet}`])
      await nsExec(e.ns, ['ip', 'link', 'set', e.ifname, 'mtu', String(mtu), 'up'])
      await nsExec(e.ns, ['ip', 'addr', 'add', `${e.ip}/24`, 'dev', e.ifname])
      await nsExec(e.ns, ['ip', 'route', 'add', peer.podSubnet, 'dev', e.ifname])
    }
  } else {
    for (const [i, e] of ends.entries()) {
      const peer = ends[1 - i] as typeof e
      await nsExec(e.ns, ['ip', 'link', 'add', e.ifname, 'type', 'vxlan', 'id', '42', 'local', e.underlay, 'dstport', '4789', 'dev', 'eth0', 'nolearning'])
      await nsExec(e.ns, ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', e.ifname, 'dst', peer.underlay])
      await nsExec(e.ns, ['ip', 'link', 'set', e.ifname, 'mtu', String(mtu), 'up'])
      await nsExec(e.ns, ['ip', 'addr', 'add', `${e.ip}/24`, 'dev', e.ifname])
      await nsExec(e.ns, ['ip', 'route', 'add', peer.podSubnet, 'via', peer.ip, 'dev', e.ifname])
    }
  }
  // The pod: bridge + veth (tunnel MTU) + forwarding in the end's namespace, as CNI's bridge plugin does.
  for (const e of ends) {
    await sh('ip', ['netns', 'add', e.podNs])
    lab.namespaces.push(e.podNs)
    await nsExec(e.podNs, ['ip', 'link', 'set', 'lo', 'up'])
    await nsExec(e.ns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    await nsExec(e.ns, ['ip', 'link', 'add', 'cbr0', 'type', 'bridge'])
    await nsExec(e.ns, ['ip', 'addr', 'add', `${gw(e)}/24`, 'dev', 'cbr0'])
    await nsExec(e.ns, ['ip', 'link', 'set', 'cbr0', 'up'])
    await nsExec(e.ns, ['ip', 'link', 'add', 'pv', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', e.podNs])
    await nsExec(e.ns, ['ip', 'link', 'set', 'pv', 'master', 'cbr0', 'up'])
    await nsExec(e.podNs, ['ip', 'addr', 'add', `${podIp(e)}/24`, 'dev', 'eth0'])
    await nsExec(e.podNs, ['ip', 'link', 'set', 'eth0', 'up'])
    await nsExec(e.podNs, ['ip', 'route', 'add', 'default', 'via', gw(e)])
  }
  return {
    tunnel: { name: `hand-built ${BACKEND} end→end`, serverNs: b.ns, serverIp: b.ip, clientNs: a.ns },
    pods: { name: `hand-built ${BACKEND} pod→pod`, serverNs: b.podNs, serverIp: podIp(b), clientNs: a.podNs }
  }
}

async function main (): Promise<void> {
  const lab = await Lab.create({ nodes: 2, podsPerNode: 1, backend: BACKEND, dualStack: false, resyncInterval: '30s' }) // podmeshd's default, not the lab's 2 s
  const servers: ChildProcess[] = []
  const handIfs = [`${lab.id}hw1`, `${lab.id}hw2`]
  const cleanup = async (): Promise<void> => {
    for (const s of servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL')
    for (const w of handIfs) await killWireguardGo(w)
    await lab.destroy()
  }
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { cleanup().finally(() => process.exit(130)) })
  try {
    const [n1, n2] = lab.nodes as [LabNode, LabNode]
    const src = n1.pods[0]; const dst = n2.pods[0]
    const dstIp = dst?.ips[0]
    if (src === undefined || dst === undefined || dstIp === undefined) throw new Error('lab has no pods')
    if (!await lab.ping(src.ns, dstIp, { count: 3, interval: '0.2', timeoutS: 5 })) throw new Error(`${src.name} cannot reach ${dstIp}`)

    // Hand-built tunnel: two namespaces on the same underlay bridge as the nodes.
    const ha = await underlayNs(lab, 'ha', 201)
    const hb = await underlayNs(lab, 'hb', 202)
    const hand = await handTunnel(lab, [
      { ns: ha, underlay: '192.0.2.201', ifname: handIfs[0] as string, ip: '10.99.0.1', podSubnet: '10.99.10.0/24', podNs: `${lab.id}hpa` },
      { ns: hb, underlay: '192.0.2.202', ifname: handIfs[1] as string, ip: '10.99.0.2', podSubnet: '10.99.20.0/24', podNs: `${lab.id}hpb` }])
    if (!await lab.ping(`${lab.id}hpa`, '10.99.20.2', { count: 3, interval: '0.2', timeoutS: 5 })) throw new Error('hand-built pod→pod path does not ping')
    // Plain veth: two namespaces joined directly.
    const va = `${lab.id}va`; const vb = `${lab.id}vb`
    for (const ns of [va, vb]) { await sh('ip', ['netns', 'add', ns]); lab.namespaces.push(ns); await nsExec(ns, ['ip', 'link', 'set', 'lo', 'up']) }
    await nsExec(va, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', vb])
    for (const [ns, ip] of [[va, '10.98.0.1'], [vb, '10.98.0.2']] as const) {
      await nsExec(ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
      await nsExec(ns, ['ip', 'link', 'set', 'eth0', 'up'])
    }
    const veth: Path = { name: 'plain veth', serverNs: vb, serverIp: '10.98.0.2', clientNs: va }
    const podmesh: Path = { name: `podmesh ${BACKEND} pod→pod`, serverNs: dst.ns, serverIp: dstIp, clientNs: src.ns }
    const n2Tunnel = (await n2.tunnelAddresses()).find(a => !a.includes(':'))
    if (n2Tunnel === undefined) throw new Error(`${n2.name} has no IPv4 tunnel address`)
    const podmeshNodes: Path = { name: `podmesh ${BACKEND} node→node`, serverNs: n2.ns, serverIp: n2Tunnel, clientNs: n1.ns }
    const paths = [podmesh, hand.pods, podmeshNodes, hand.tunnel, veth]

    const frag0 = (await fragCreates(n1.ns)) + (await fragCreates(n2.ns))
    const results = new Map<string, number[]>(paths.map(p => [p.name, []]))
    for (let r = 0; r < ROUNDS; r++) {
      for (const p of paths) {
        const mbps = await iperf(p, servers)
        results.get(p.name)?.push(mbps)
        process.stderr.write(`round ${r + 1}/${ROUNDS} ${p.name}: ${mbps.toFixed(0)} Mbit/s\n`)
      }
    }
    const fragDelta = (await fragCreates(n1.ns)) + (await fragCreates(n2.ns)) - frag0

    // MTU: the pod's, the tunnel's, and don't-fragment pings at the edge.
    const podMtu = await linkMtu(src.ns, 'eth0')
    const underlayMtu = await linkMtu(n1.ns, 'eth0')
    const tunnelDev = BACKEND === 'wireguard' ? n1.wgIf : `${n1.wgIf}x`
    const tunnelMtu = await linkMtu(n1.ns, tunnelDev)
    const df = async (size: number): Promise<boolean> =>
      / 0% packet loss/.test(await nsExec(src.ns, ['ping', '-M', 'do', '-s', String(size), '-c', '3', '-i', '0.2', '-W', '2', dstIp], { allowFail: true }))
    const fits = await df(podMtu - 28)
    const over = await df(podMtu - 27)
    // The remote side too: its pod answers with packets of the same size through its own tunnel.
    const remoteTunnelMtu = await linkMtu(n2.ns, BACKEND === 'wireguard' ? n2.wgIf : `${n2.wgIf}x`)

    const best = (name: string): number => Math.max(...(results.get(name) ?? []))
    const all = (name: string): string => (results.get(name) ?? []).map(x => x.toFixed(0)).join(', ')
    const pm = best(podmesh.name); const hp = best(hand.pods.name); const ve = best(veth.name)
    const pn = best(podmeshNodes.name); const ht = best(hand.tunnel.name)
    const rows: Row[] = [
      { metric: `${veth.name} (best of ${ROUNDS})`, value: ve, unit: 'Mbit/s', note: all(veth.name) },
      { metric: `${hand.tunnel.name} (best of ${ROUNDS})`, value: ht, unit: 'Mbit/s', note: all(hand.tunnel.name) },
      { metric: `${podmeshNodes.name} (best of ${ROUNDS})`, value: pn, unit: 'Mbit/s', floor: ht, note: all(podmeshNodes.name) },
      { metric: `${hand.pods.name} (best of ${ROUNDS})`, value: hp, unit: 'Mbit/s', note: all(hand.pods.name) },
      { metric: `${podmesh.name} (best of ${ROUNDS})`, value: pm, unit: 'Mbit/s', floor: hp, note: all(podmesh.name) },
      { metric: 'ratio podmesh / hand-built, pod→pod', value: pm / hp, unit: 'x', target: 0.95, targetKind: 'min' },
      { metric: 'ratio podmesh / hand-built, tunnel only', value: pn / ht, unit: 'x', target: 0.95, targetKind: 'min' },
      { metric: 'ratio podmesh pod→pod / veth', value: pm / ve, unit: 'x' },
      { metric: 'ratio hand-built pod→pod / veth', value: hp / ve, unit: 'x' },
      { metric: 'pod eth0 MTU', value: podMtu, unit: 'bytes' },
      { metric: `tunnel device MTU (${tunnelDev})`, value: tunnelMtu, unit: 'bytes', note: `underlay eth0 ${underlayMtu}; remote node's tunnel ${remoteTunnelMtu}` },
      {
        metric: `tunnel MTU = underlay − ${OVERHEAD[BACKEND]} = pod MTU`,
        value: tunnelMtu === underlayMtu - OVERHEAD[BACKEND] && remoteTunnelMtu === tunnelMtu && podMtu === tunnelMtu ? 1 : 0,
        unit: 'bool',
        target: 1,
        targetKind: 'min'
      },
      { metric: `DF ping -s ${podMtu - 28} (= pod MTU) passes`, value: fits ? 1 : 0, unit: 'bool', target: 1, targetKind: 'min' },
      { metric: `DF ping -s ${podMtu - 27} (pod MTU + 1) fails`, value: over ? 0 : 1, unit: 'bool', target: 1, targetKind: 'min' },
      { metric: 'IP fragments created on the nodes', value: fragDelta, unit: 'packets', target: 0, note: 'during the iperf3 runs' }
    ]
    printReport('dataplane', rows, {
      backend: BACKEND === 'wireguard' ? 'wireguard (wireguard-go)' : 'vxlan',
      rounds: ROUNDS,
      seconds: SECONDS,
      load1: (await import('node:os')).loadavg()[0]?.toFixed(2)
    })
  } finally {
    await cleanup()
  }
}

main().then(() => process.exit(0), e => { process.stderr.write(`dataplane: ${(e as Error).stack ?? String(e)}\n`); process.exit(1) })

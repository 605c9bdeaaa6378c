// A real container runtime on podmeshd's conflist: Debian's containerd 1.6 on lab nodes,
// containers started with `ctr run --cni`, which runs the conflist's bridge + host-local + portmap
// itself from /etc/cni/net.d (in each node's private mount namespace: the dir podmeshd writes,
// see containerd-node.ts). Node-1's plugins are as Debian installs them (/usr/lib/cni, no
// /opt/cni/bin: Debian's ctr searches both), node-2's also at /opt/cni/bin (where upstream's ctr
// and containerd's CRI default look), node-3's nowhere. Checked: each container's addresses lie
// in its node's pod subnets (as leased in etcd); containers on two nodes reach each other on
// every family and reach a plain pod on a third node; with no plugins ctr fails and says where
// it looked; ctr's own CNI DEL frees the addresses; podmeshctl doctor, run in those namespaces,
// tells the CRI plugin's view of each layout. hostPort: ctr 1.6 has no flag for port mappings
// (it calls go-cni's Setup with none), so the mapping is made as the CRI plugin makes it: the
// node's conflist ADDed for the container's network namespace with runtimeConfig.portMappings,
// plugins from /usr/lib/cni (the CRI bin_dir the README documents); a connection to the node's
// address from another node is then answered from inside the container, and from a container on
// another node once that node masquerades (without it the DNATed reply does not come back).
import t from 'tap'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Lab, ROOT, sh, type LabNode, type LabPod } from './cluster'
import { ContainerdNode } from './containerd-node'
import { buildBusyboxImage, BUSYBOX } from './oci-image'
import { cniAdd, cniDel, type CniOptions } from './cni-runtime'
import { containsIp, parseCidr, parseIp } from '../../lib/ipam/cidr'
import { isShError } from '../harness/netns'

t.setTimeout(10 * 60_000)

/** What containerd needs that the lab cannot provide itself: only then is the test skipped. */
const RUNTIME_BINARIES = ['/usr/bin/containerd', '/usr/bin/ctr', '/usr/bin/containerd-shim-runc-v2', BUSYBOX]
const missing = RUNTIME_BINARIES.filter(b => !existsSync(b))
const runcFound = ['/usr/sbin/runc', '/usr/bin/runc'].some(existsSync)

const HOST_PORT = 18080
const CTL = join(ROOT, 'dist', 'cmd', 'podmeshctl.js')
interface Check { check: string, result: string, detail: string, fix?: string }

/** Retries `probe` for up to `ms` (IPv6 addresses leave duplicate address detection first); false when it never succeeded. */
async function eventually (probe: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await probe()) return true
    if (Date.now() > deadline) return false
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}

/** busybox nc's own words for "nothing answered": refused, or no answer within -w. */
const NO_ANSWER = /nc: (can't connect to remote host|timed out)/

/**
 * What a busybox nc run sent back, '' when nc says nothing answered. Any other failure (no
 * busybox, no namespace, ctr failing) throws: it must not read as "nothing answers".
 */
async function answerOf (nc: Promise<string>): Promise<string> {
  try {
    return await nc
  } catch (e) {
    if (isShError(e) && NO_ANSWER.test(e.stderr)) return ''
    throw e
  }
}

/** One TCP exchange from a node's namespace with busybox nc; what the other end sent, '' when nothing answered. */
async function fetchFrom (node: LabNode, ip: string, port: number): Promise<string> {
  return await answerOf(sh('ip', ['netns', 'exec', node.ns, BUSYBOX, 'nc', '-w', '3', ip, String(port)], { timeoutMs: 15_000 }))
}

t.test('containerd ctr run --cni on podmeshd\'s conflist', { skip: missing.length > 0 || !runcFound ? `containerd cannot run here: missing ${[...missing, ...(runcFound ? [] : ['runc'])].join(', ')} (scripts/install-deps installs containerd and busybox-static)` : false }, async t => {
  const runtimes: ContainerdNode[] = []
  let lab: Lab | undefined
  t.teardown(async () => {
    for (const r of runtimes) await r.destroy()
    await lab?.destroy()
  })
  lab = await Lab.create({ nodes: 3, backend: 'wireguard' })
  const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode]
  const pod: LabPod = await n3.addPod(1)

  const image = await buildBusyboxImage(join(lab.dir, 'image'))
  const layouts = ['debian', 'opt-cni-bin', 'none'] as const
  for (const n of [n1, n2, n3]) {
    const dir = join(lab.dir, `containerd-${n.index}`)
    mkdirSync(dir, { recursive: true })
    const r = new ContainerdNode({ netns: n.ns, namespace: `podmesh-${lab.id}`, dir, confDir: join(n.dir, 'cni'), plugins: layouts[n.index - 1] })
    runtimes.push(r)
    await r.start()
    await r.importImage(image)
  }
  const [r1, r2, r3] = runtimes as [ContainerdNode, ContainerdNode, ContainerdNode]
  /** podmeshctl doctor's containerd check where containerd runs, for podmeshd's conflist in /etc/cni/net.d. */
  const doctor = async (r: ContainerdNode, config: string): Promise<{ code: number | null, check: Check | undefined, stderr: string }> => {
    const out = await r.inNamespaces([process.execPath, CTL, '--etcd-endpoints', lab!.etcdUrl, 'doctor', '-o', 'json',
      '--containerd-config', config, '--cni-conf-dir', '/etc/cni/net.d'])
    return { code: out.code, check: (JSON.parse(out.stdout) as Check[]).find(c => c.check === 'containerd cni'), stderr: out.stderr }
  }
  const noConfig = join(lab.dir, 'no-containerd-config.toml')
  const debianConfig = join(lab.dir, 'debian-containerd-config.toml')
  writeFileSync(debianConfig, 'version = 2\n[plugins]\n  [plugins."io.containerd.grpc.v1.cri"]\n    [plugins."io.containerd.grpc.v1.cri".cni]\n      bin_dir = "/usr/lib/cni"\n      conf_dir = "/etc/cni/net.d"\n')

  const leased = new Map((JSON.parse(await lab.ctl('nodes', '-o', 'json')) as Array<{ name: string, podCIDRs: string[] }>).map(n => [n.name, n.podCIDRs]))
  const inSubnets = (ip: string, node: LabNode): boolean => {
    const a = parseIp(ip)
    return (leased.get(node.name) ?? []).some(c => containsIp(parseCidr(c), a.family, a.addr))
  }

  await r1.run('c1', ['sleep', '3600'], { cni: true })
  await r2.run('c2', ['sleep', '3600'], { cni: true })
  const ips1 = await r1.addresses('c1')
  const ips2 = await r2.addresses('c2')

  t.test('each container has an address of each family in its node\'s pod subnets', async t => {
    for (const [ips, node] of [[ips1, n1], [ips2, n2]] as const) {
      t.same(ips.map(ip => parseIp(ip).family).sort(), [4, 6], `${node.name}'s container: ${ips.join(' ')}`)
      for (const ip of ips) t.ok(inSubnets(ip, node), `${ip} in ${node.name}'s ${(leased.get(node.name) ?? []).join(',')}`)
      // host-local's record of each address: what the DEL at the end must remove.
      for (const ip of ips) t.ok(existsSync(join(node.dir, 'ipam', 'podmesh', ip)), `${node.name}'s host-local holds ${ip}`)
    }
  })

  t.test('containers on two nodes reach each other, both ways, on every family', async t => {
    for (const ip of ips2) t.ok(await eventually(async () => await r1.ping('c1', ip, 1)), `c1 (node-1) → c2 ${ip}`)
    for (const ip of ips1) t.ok(await eventually(async () => await r2.ping('c2', ip, 1)), `c2 (node-2) → c1 ${ip}`)
  })

  t.test('containers and a plain pod on a third node reach each other', async t => {
    t.equal(pod.ips.length, 2, `the lab pod has both families: ${pod.ips.join(' ')}`)
    for (const ip of pod.ips) t.ok(await eventually(async () => await r1.ping('c1', ip, 1)), `c1 → ${pod.name} ${ip}`)
    for (const ip of pod.ips) t.ok(await eventually(async () => await r2.ping('c2', ip, 1)), `c2 → ${pod.name} ${ip}`)
    for (const ip of [...ips1, ...ips2]) t.ok(await eventually(async () => await lab!.ping(pod.ns, ip)), `${pod.name} → ${ip}`)
  })

  t.test('a hostPort mapping answers on the node\'s address from another node, from inside the container', async t => {
    // The listener answers each connection with the container's own eth0 addresses.
    const hp = await r2.run('hp', ['nc', '-ll', '-p', String(HOST_PORT), '-e', BUSYBOX, 'ip', '-o', 'addr', 'show', 'dev', 'eth0'], { cni: false })
    t.equal(await fetchFrom(n1, n2.underlayIp, HOST_PORT), '', 'before the mapping nothing answers on node-2:' + String(HOST_PORT))
    const cni: CniOptions = {
      conflistPath: n2.conflist,
      containerId: `podmesh-${lab!.id}-hp`,
      netns: `/proc/${hp.pid}/ns/net`,
      hostNetns: n2.ns,
      ifName: 'eth0',
      pluginDirs: ['/usr/lib/cni'],
      cacheDir: join(lab!.dir, 'hp-cni-cache'),
      capabilityArgs: { portMappings: [{ hostPort: HOST_PORT, containerPort: HOST_PORT, protocol: 'tcp' }] }
    }
    const added = await cniAdd(cni)
    const hpIp = added.ips?.find(i => i.address.includes('.'))?.address.split('/')[0]
    t.ok(hpIp !== undefined && inSubnets(hpIp, n2), `the hostPort container got ${hpIp ?? 'no IPv4'} from node-2's subnet`)
    try {
      const answer = await eventually(async () => (await fetchFrom(n1, n2.underlayIp, HOST_PORT)).includes(` ${hpIp ?? '-'}/`))
      t.ok(answer, `node-1 → node-2 ${n2.underlayIp}:${HOST_PORT} answered by the container (${hpIp ?? '-'})`)
      // From a container on node-1 the request leaves with its pod address; the DNATed reply
      // then goes back through the tunnel with node-2's underlay address as its source.
      const fromC1 = async (): Promise<string> => await answerOf(r1.exec('c1', ['nc', '-w', '3', n2.underlayIp, String(HOST_PORT)]))
      t.equal(await fromC1(), '', 'without --masquerade a container on node-1 gets no answer')
      await n1.stop()
      await n1.start(['--masquerade'])
      t.ok(await eventually(async () => (await fromC1()).includes(` ${hpIp ?? '-'}/`)), 'with --masquerade on node-1 the container there is answered from the hostPort container')
    } finally {
      await cniDel(cni)
    }
    t.equal(await fetchFrom(n1, n2.underlayIp, HOST_PORT), '', 'after the CNI DEL the mapping is gone')
    await r2.stop('hp')
  })

  t.test('with no plugin where ctr looks, ctr run --cni fails and names the dirs', async t => {
    const failed = await r3.run('c3', ['sleep', '3600'], { cni: true }).then(() => undefined, (e: unknown) => e)
    // Debian's ctr: "[/opt/cni/bin /usr/lib/cni]"; upstream's: "[/opt/cni/bin]".
    t.match(String(failed), /failed to find plugin "bridge" in path \[\/opt\/cni\/bin( \/usr\/lib\/cni)?\]/)
  })

  t.test('podmeshctl doctor tells the CRI plugin\'s view of each layout', async t => {
    const linked = await doctor(r2, noConfig)
    t.match(linked.check, { result: 'OK', detail: /reads \/etc\/cni\/net\.d\/10-podmesh\.conflist .*in \/opt\/cni\/bin/ }, `plugins at /opt/cni/bin, no config: ${linked.stderr}`)
    const debian = await doctor(r1, noConfig)
    t.match(debian.check, { result: 'FAIL', detail: /looks for plugins in \/opt\/cni\/bin .*lacks bridge, host-local, portmap, loopback/, fix: /bin_dir = "\/usr\/lib\/cni"/ },
      'plugins only in /usr/lib/cni and no config: the CRI default /opt/cni/bin lacks them (ctr alone still finds them)')
    t.equal(debian.code, 1, 'doctor exits 1')
    const fixed = await doctor(r1, debianConfig)
    t.match(fixed.check, { result: 'OK', detail: /reads \/etc\/cni\/net\.d\/10-podmesh\.conflist .*in \/usr\/lib\/cni/ }, 'with bin_dir = "/usr/lib/cni" (Debian\'s shipped config)')
    const none = await doctor(r3, debianConfig)
    t.match(none.check, { result: 'FAIL', fix: /apt install containernetworking-plugins/ }, 'no plugins anywhere')
  })

  t.test('ctr\'s CNI DEL frees the containers\' addresses when they end', async t => {
    await r1.stop('c1')
    await r2.stop('c2')
    for (const [ips, node] of [[ips1, n1], [ips2, n2]] as const) {
      for (const ip of ips) t.notOk(existsSync(join(node.dir, 'ipam', 'podmesh', ip)), `${node.name} released ${ip}`)
    }
  })
})

// What `scripts/vm-lab check` asserts in the VMs, in order: kernel WireGuard under the default
// `auto` mode, Type=notify readiness, the pod matrix on both families, a service (ClusterIP on
// both families, NodePort from outside) on the Debian kernel's nftables, an encrypted underlay,
// the unit's sandbox as systemd applies it (exposure score, settings, capabilities, seccomp, a
// read-only /run, 0600 state files, memory and tasks against the limits), masquerade inside the
// sandbox with iptables-nft and with iptables-legacy, wireguard-go inside the sandbox, restart and
// kill -9 under a ping with nothing lost, drift repair, structured logs in the journal, a reboot
// that keeps subnet and key, `podmeshctl diff` clean. Each check throws with what it saw, or returns a one-line detail.
//
// The guests run under TCG: a Node.js process there starts in ~1 s and runs ~20x slower than on
// the host, so podmeshctl calls and daemon restarts take seconds; the timeouts allow for that.

import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { BRIDGE_IP, CLUSTER_PREFIX, ENV, ETCD_URL, VmLabError, WEB_LABELS, run, sleep, waitFor, type PodState, type VmLab, type VmState } from './vm-lab'

export interface Check { name: string, what: string, run: (lab: VmLab) => Promise<string> }
export interface CheckResult { name: string, ok: boolean, seconds: number, detail: string }

class CheckFailed extends VmLabError {}
const fail = (message: string): never => { throw new CheckFailed(message) }
const expect = (cond: boolean, message: string): void => { if (!cond) fail(message) }

const WG = 'podmesh0'
/** podmeshctl in a guest, with the etcd settings of /etc/default/podmeshd loaded (README step 4). */
const CTL = `${ENV} && podmeshctl`

interface NodeRecord { name: string, publicKey: string, podCIDRs: string[], endpoint: string, generation: number }

async function nodeRecord (lab: VmLab, name: string): Promise<NodeRecord> {
  const out = await lab.ssh(lab.vm(1), `ETCDCTL_API=3 etcdctl --endpoints ${ETCD_URL} get --print-value-only ${CLUSTER_PREFIX}nodes/${name}`)
  if (out.trim() === '') fail(`no node record for ${name} in etcd`)
  return JSON.parse(out) as NodeRecord
}

async function readyz (lab: VmLab, vm: VmState): Promise<string> {
  return (await lab.sshRun(vm, 'curl -s -m 3 http://127.0.0.1:9475/readyz')).stdout.trim()
}

const podsOf = (lab: VmLab, vm: VmState): PodState[] => lab.state.pods.filter(p => p.node === vm.name)
const pod = (lab: VmLab, vm: VmState, i = 0): PodState => podsOf(lab, vm)[i] ?? fail(`${vm.name} has no pod ${i + 1}`)
const v6 = (ip: string): boolean => ip.includes(':')

/** From each VM, pings (in parallel, in the guest) each target from each given pod netns or the host ("-"). */
async function pingFrom (lab: VmLab, jobs: Array<{ vm: VmState, from: string, ip: string, label: string }>): Promise<string[]> {
  const failures: string[] = []
  await Promise.all(lab.vms.map(async vm => {
    const mine = jobs.filter(j => j.vm === vm)
    if (mine.length === 0) return
    const lines = mine.map((j, i) => {
      const exec = j.from === '-' ? '' : `ip netns exec ${j.from} `
      return `( if ${exec}ping ${v6(j.ip) ? '-6 ' : ''}-c 1 -W 3 -q ${j.ip} >/dev/null 2>&1; then echo ok ${i}; else echo FAIL ${i}; fi ) &`
    })
    const out = await lab.ssh(vm, `${lines.join('\n')}\nwait`, { timeoutMs: 60_000 })
    for (const m of out.matchAll(/^FAIL (\d+)$/gm)) failures.push(mine[Number(m[1])]?.label ?? '?')
  }))
  return failures.sort()
}

/** Every pod pings every other pod on every address; every node pings every remote pod. */
async function matrix (lab: VmLab): Promise<{ failures: string[], pings: number }> {
  const pods = lab.state.pods
  const jobs: Array<{ vm: VmState, from: string, ip: string, label: string }> = []
  for (const a of pods) {
    for (const b of pods) {
      if (a === b) continue
      for (const ip of b.ips) jobs.push({ vm: lab.vms.find(v => v.name === a.node) as VmState, from: a.name, ip, label: `${a.node}/${a.name} -> ${b.node}/${b.name} ${ip}` })
    }
  }
  for (const vm of lab.vms) {
    for (const b of pods.filter(p => p.node !== vm.name)) {
      for (const ip of b.ips) jobs.push({ vm, from: '-', ip, label: `${vm.name} -> ${b.node}/${b.name} ${ip}` })
    }
  }
  return { failures: await pingFrom(lab, jobs), pings: jobs.length }
}

/**
 * A ping at 20/s from a pod in `vm`, running in the guest until stopped. Stopping interrupts it;
 * the requests then still in flight (after the last answered one, at most IN_FLIGHT of them: half
 * a second) do not count as lost. Under a loaded host a TCG guest's round trip exceeds the 50 ms
 * interval, so more than the last one can be in flight; any gap before a reply is a loss.
 */
const IN_FLIGHT = 10

/** The highest sequence number ping has an answer for in its output so far (0: none yet). */
const lastAnswered = (out: string): number => Math.max(0, ...[...out.matchAll(/icmp_seq=(\d+) /g)].map(x => Number(x[1])))

interface GuestPing {
  /** The highest answered sequence number so far (ping writes a line per reply). */
  answered: () => Promise<number>
  stop: () => Promise<{ sent: number, lost: number[], lastAnswered: number }>
}

async function startPing (lab: VmLab, vm: VmState, from: string, ip: string): Promise<GuestPing> {
  const file = `/run/lab-ping-${from}-${ip.replace(/[:.]/g, '_')}`
  const pid = (await lab.ssh(vm, `setsid ip netns exec ${from} ping ${v6(ip) ? '-6 ' : ''}-i 0.05 -W 2 ${ip} >${file} 2>&1 </dev/null & echo $!`)).trim()
  return {
    answered: async () => lastAnswered(await lab.ssh(vm, `cat ${file}`)),
    stop: async () => {
      const out = await lab.ssh(vm, `kill -INT ${pid}; while kill -0 ${pid} 2>/dev/null; do sleep 0.1; done; cat ${file}`, { timeoutMs: 30_000 })
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out)
      if (m === null) fail(`ping ${ip} in ${vm.name}/${from}: output not understood: ${out.slice(-500)}`)
      const sent = Number(m?.[1])
      const got = new Set([...out.matchAll(/icmp_seq=(\d+) /g)].map(x => Number(x[1])))
      const last = lastAnswered(out)
      const lost: number[] = []
      // ping numbers from 1 (iputils): 1..sent were sent.
      const counted = sent - last > IN_FLIGHT ? sent : last
      for (let seq = 1; seq <= counted; seq++) if (!got.has(seq)) lost.push(seq)
      return { sent, lost, lastAnswered: last }
    }
  }
}

/** The count of "data plane applied; ready" lines podmeshd wrote to `vm`'s journal since `since` (epoch seconds, the guest's clock). */
async function readyLines (lab: VmLab, vm: VmState, since: string): Promise<number> {
  const out = await lab.ssh(vm, `journalctl _SYSTEMD_UNIT=podmeshd.service --since @${since} -o cat --no-pager`)
  return out.split('\n').filter(l => l.includes('"msg":"data plane applied; ready"')).length
}

/**
 * Pings pod→pod on both families (20/s each) from before `action` (a restart of `to`'s podmeshd)
 * until 2 s after the new podmeshd's first apply ("data plane applied; ready" in `to`'s journal
 * since the action); nothing may be lost. That the streams span the new podmeshd's first apply is
 * shown by order, not by clocks (guests' clocks differ): each stream had answers before the
 * action, and answers to requests numbered after the ones it had when the apply was seen.
 */
async function noLossAcross (lab: VmLab, from: VmState, to: VmState, action: () => Promise<void>): Promise<string> {
  const src = pod(lab, from)
  const dst = pod(lab, to)
  const streams = await Promise.all(dst.ips.map(async ip => await startPing(lab, from, src.name, ip)))
  let results: Array<{ sent: number, lost: number[], lastAnswered: number }> = []
  let before: number[] = []
  let atApply: number[] = []
  const t0 = Date.now()
  try {
    await sleep(2000)
    before = await Promise.all(streams.map(async s => await s.answered()))
    const since = (await lab.ssh(to, 'date +%s')).trim()
    await action()
    await waitFor(`${to.name}: the new podmeshd's first apply in the journal`, 90_000, async () => await readyLines(lab, to, since) > 0, 500)
    atApply = await Promise.all(streams.map(async s => await s.answered()))
    await sleep(2000)
  } finally {
    results = await Promise.all(streams.map(async s => await s.stop()))
  }
  const seconds = (Date.now() - t0) / 1000
  const said = results.map((r, i) => `${dst.ips[i] ?? ''}: ${r.lost.length} of ${r.sent} lost`)
  results.forEach((r, i) => {
    const what = `pings ${from.name}/${src.name} -> ${to.name}/${dst.name} ${dst.ips[i] ?? ''}`
    expect((before[i] ?? 0) > 0, `${what}: no answer before the restart`)
    expect(r.lastAnswered > (atApply[i] ?? Infinity), `${what}: no answer after the new podmeshd's first apply was seen (last answered seq ${r.lastAnswered}, ${atApply[i] ?? '?'} then)`)
    expect(r.sent > (seconds - 1) * 15, `${what}: only ${r.sent} sent in ${seconds.toFixed(0)} s`)
    expect(r.lost.length === 0, `${what} lost packets: ${said.join(', ')} (lost seq ${r.lost.slice(0, 20).join(',')})`)
  })
  return `${said.join(', ')}; answered seq ${before.join('/')} before the restart, ${atApply.join('/')} at the first apply, ${results.map(r => r.lastAnswered).join('/')} at the end`
}

/** A tcpdump on the lab bridge in the host namespace, for as long as `traffic` runs. */
async function capture (lab: VmLab, filter: string, traffic: () => Promise<void>): Promise<string[]> {
  const file = join(lab.state.dir, `capture-${Date.now()}.pcap`)
  // --immediate-mode: without it the last second of packets sits in the capture ring when
  // tcpdump is interrupted, and is never written.
  const cap = spawn('ip', ['netns', 'exec', lab.state.ns, 'tcpdump', '-i', 'br0', '-n', '-U', '--immediate-mode', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] })
  try {
    await new Promise<void>((resolve, reject) => {
      let err = ''
      cap.stderr.on('data', d => { err += String(d); if (err.includes('listening on')) resolve() })
      cap.once('exit', code => reject(new VmLabError(`tcpdump exited ${code}: ${err}`)))
    })
    await traffic()
    await sleep(1000)
  } finally {
    if (cap.exitCode === null) {
      const exited = new Promise(resolve => cap.once('exit', resolve))
      cap.kill('SIGINT')
      await Promise.race([exited, sleep(5000)])
      if (cap.exitCode === null) cap.kill('SIGKILL')
    }
  }
  const read = await run('tcpdump', ['-n', '-r', file])
  return read.stdout.trim().split('\n').filter(l => l !== '')
}

/**
 * The highest `systemd-analyze security` exposure the unit may have. The unit before the
 * hardening of issue #10 scored 5.8 ("MEDIUM") on Debian's systemd 252; the hardened one 2.6.
 */
export const MAX_EXPOSURE = 3.0
/** What `systemctl show podmeshd` must say for the sandbox settings (systemd 252's spelling). */
export const SANDBOX_SETTINGS: Record<string, string> = {
  CapabilityBoundingSet: 'cap_net_bind_service cap_net_admin cap_net_raw',
  AmbientCapabilities: 'cap_net_bind_service cap_net_admin cap_net_raw',
  NoNewPrivileges: 'yes',
  ProtectSystem: 'strict',
  ReadOnlyPaths: '/run',
  UMask: '0077',
  ProtectClock: 'yes',
  ProtectKernelLogs: 'yes',
  ProtectKernelModules: 'yes',
  ProtectHostname: 'yes',
  ProtectProc: 'invisible',
  RestrictNamespaces: 'yes',
  RestrictRealtime: 'yes',
  SystemCallArchitectures: 'native',
  SystemCallErrorNumber: '1', // EPERM
  MemoryMax: String(512 * 1024 * 1024),
  TasksMax: '256'
}
/** CAP_NET_BIND_SERVICE (10), CAP_NET_ADMIN (12), CAP_NET_RAW (13), as /proc/<pid>/status prints a capability set. */
const NET_CAPS = '0000000000003400'

/** Switches a node's iptables and ip6tables alternatives to the nft or the legacy variant. */
const iptablesVariant = (v: 'nft' | 'legacy'): string =>
  `update-alternatives --quiet --set iptables /usr/sbin/iptables-${v} && update-alternatives --quiet --set ip6tables /usr/sbin/ip6tables-${v}`
/** Removes podmesh's masquerade hook and chain from the given variant's tables (both families). */
const dropMasq = (v: 'nft' | 'legacy'): string =>
  `for b in iptables-${v} ip6tables-${v}; do $b -t nat -D POSTROUTING -j PODMESH-MASQ -m comment --comment podmesh || true; $b -t nat -F PODMESH-MASQ || true; $b -t nat -X PODMESH-MASQ || true; done 2>/dev/null`
/** Unloads the legacy NAT modules (a node that never used iptables-legacy has none loaded). */
const UNLOAD_LEGACY = 'for m in ip6table_nat iptable_nat ip6_tables ip_tables; do rmmod $m 2>/dev/null || true; done'

async function mainPid (lab: VmLab, vm: VmState): Promise<number> {
  return Number((await lab.ssh(vm, 'systemctl show -p MainPID --value podmeshd')).trim())
}

async function waitReady (lab: VmLab, vm: VmState, timeoutMs: number): Promise<void> {
  await waitFor(`${vm.name}: podmeshd ready`, timeoutMs, async () => (await readyz(lab, vm)).startsWith('ready'))
}

export const CHECKS: Check[] = [
  {
    name: 'kernel-wireguard',
    what: 'with the default --wg-mode auto, every node runs a kernel WireGuard link and no wireguard-go',
    run: async lab => {
      const details = await Promise.all(lab.vms.map(async vm => {
        const out = await lab.ssh(vm, [
          `grep -c '^PODMESH_WG_MODE=' /etc/default/podmeshd || true`,
          'echo ---',
          `ip -d link show ${WG}`,
          'echo ---',
          'pgrep -a wireguard-go || true',
          'echo ---',
          'command -v wireguard-go || true'
        ].join('\n'))
        const [mode = '', link = '', procs = '', userspace = ''] = out.split('---\n')
        expect(mode.trim() === '0', `${vm.name}: /etc/default/podmeshd sets PODMESH_WG_MODE; the default (auto) must be what runs`)
        expect(/^\s+wireguard /m.test(link), `${vm.name}: ${WG} is not a kernel WireGuard link:\n${link}`)
        expect(procs.trim() === '', `${vm.name}: wireguard-go runs: ${procs.trim()}`)
        return userspace.trim() !== ''
      }))
      return `${lab.vms.length} nodes: ${WG} is "wireguard" (kernel), no wireguard-go process${details.every(Boolean) ? ' although wireguard-go is installed' : ''}`
    }
  },
  {
    name: 'notify-start',
    what: '`systemctl start podmeshd` returns only once podmeshd is ready (Type=notify)',
    run: async lab => {
      const vm = lab.vm(2)
      const type = (await lab.ssh(vm, 'systemctl show -p Type --value podmeshd')).trim()
      expect(type === 'notify', `unit type is ${type}`)
      await lab.ssh(vm, 'systemctl stop podmeshd')
      const t0 = Date.now()
      const out = await lab.ssh(vm, 'systemctl start podmeshd; curl -s -m 3 http://127.0.0.1:9475/readyz', { timeoutMs: 180_000 })
      const s = (Date.now() - t0) / 1000
      expect(out.startsWith('ready'), `${vm.name}: right after \`systemctl start\` returned, /readyz said: ${out.trim()}`)
      return `${vm.name}: start returned after ${s.toFixed(1)} s, /readyz at once: ${out.trim()}`
    }
  },
  {
    name: 'pod-matrix',
    what: 'every pod reaches every other pod, and every node every remote pod, on IPv4 and IPv6',
    run: async lab => {
      for (const p of lab.state.pods) expect(p.ips.length === 2 && p.ips.some(v6) && p.ips.some(ip => !v6(ip)), `${p.node}/${p.name} lacks an address family: ${p.ips.join(' ')}`)
      let last = await matrix(lab)
      // The first packets may race the other nodes' last apply.
      for (let i = 0; i < 5 && last.failures.length > 0; i++) { await sleep(2000); last = await matrix(lab) }
      expect(last.failures.length === 0, `failed pings:\n  ${last.failures.join('\n  ')}`)
      return `${lab.state.pods.length} pods on ${lab.vms.length} nodes, ${last.pings} pings (v4+v6), all answered`
    }
  },
  {
    name: 'services',
    what: 'a NodePort service on the Debian kernel (nftables, br_netfilter): its cluster IPs answer from a pod and a node host on both families, from every endpoint (one on the caller\'s own bridge); its NodePort from outside the cluster',
    run: async lab => {
      const a = lab.vm(1)
      // The endpoints: each node's first pod (labelled app=web at `up`), a server answering with its name and the client it saw.
      const server = (name: string): string => `require('http').createServer((q, s) => s.end('${name} ' + q.socket.remoteAddress.replace(/^::ffff:/, ''))).listen(8080)`
      await Promise.all(lab.vms.map(async vm => {
        await lab.ssh(vm, `ip netns exec ${pod(lab, vm).name} setsid node -e "${server(`web-${vm.name}`)}" </dev/null >/dev/null 2>&1 &`)
      }))
      // The service stays: diff-clean and the reboot later see a table with it.
      const added = JSON.parse(await lab.ssh(a, `${CTL} service add web --type NodePort --port 80:8080 --node-port 30080 --selector ${WEB_LABELS} -o json`, { timeoutMs: 120_000 })) as { clusterIPs: string[] }
      expect(added.clusterIPs.length === 2, `web got cluster IPs ${added.clusterIPs.join(', ')}; want one per family`)
      const url = (ip: string, port = 80): string => v6(ip) ? `http://[${ip}]:${port}/` : `http://${ip}:${port}/`
      const want = lab.vms.map(vm => `web-${vm.name}`).sort().join()
      // 20 calls, each a new connection: every one of the 3 endpoints answers one of them but for a chance of 1 in 1,000.
      const calls = (exec: string, target: string): string => `for i in $(seq 20); do ${exec}curl -s -m 3 -g ${target} || echo FAIL; echo; done`
      const ask = async (exec: string, target: string): Promise<string[]> => {
        const out = exec === 'outside'
          ? (await run('ip', ['netns', 'exec', lab.state.ns, 'sh', '-c', calls('', target)], { timeoutMs: 120_000 })).stdout
          : await lab.ssh(a, calls(exec, target), { timeoutMs: 120_000 })
        return out.split('\n').filter(l => l.trim() !== '')
      }
      const complete = (got: string[]): boolean => got.every(l => l.startsWith('web-')) && [...new Set(got.map(l => l.split(' ')[0]))].sort().join() === want
      const from = pod(lab, a, 1)
      const sources = [{ label: `${a.name}/${from.name}`, exec: `ip netns exec ${from.name} ` }, { label: `${a.name} host`, exec: '' }]
      const lines: string[] = []
      for (const ip of added.clusterIPs) {
        for (const src of sources) {
          let got = await ask(src.exec, url(ip))
          // The first calls may race the endpoints reaching node-1's table.
          for (let i = 0; i < 10 && !complete(got); i++) { await sleep(2000); got = await ask(src.exec, url(ip)) }
          expect(got.every(l => l.startsWith('web-')), `${src.label} → ${ip}: not every call answered: ${got.join(' | ')}`)
          expect(complete(got), `${src.label} → ${ip}: answered by ${[...new Set(got.map(l => l.split(' ')[0]))].sort().join(', ')}; want ${want}`)
          if (src.exec !== '') {
            const mine = from.ips.find(x => v6(x) === v6(ip)) ?? ''
            const remote = got.filter(l => !l.startsWith(`web-${a.name} `))
            expect(remote.every(l => l.endsWith(` ${mine}`)), `${src.label} → ${ip}: the endpoints on other nodes must see the pod's own address ${mine}: ${remote.join(' | ')}`)
          }
        }
        lines.push(`${ip}: all 3 endpoints from a pod and the host`)
      }
      // NodePort from the lab's side of the bridge (outside the cluster), on every node's address.
      for (const vm of lab.vms) {
        const got = await ask('outside', url(vm.ip, 30080))
        expect(got.every(l => l.startsWith('web-')), `NodePort ${vm.ip}:30080 from ${BRIDGE_IP}: not every call answered: ${got.join(' | ')}`)
      }
      lines.push(`NodePort 30080 answered on ${lab.vms.map(v => v.ip).join(', ')}`)
      return lines.join('; ')
    }
  },
  {
    name: 'underlay-encrypted',
    what: 'between two nodes the underlay carries only UDP to port 51820; no pod address in clear',
    run: async lab => {
      const [a, b] = [lab.vm(2), lab.vm(3)] // neither runs etcd: nothing else flows between them
      const to = pod(lab, b)
      const lines = await capture(lab, `host ${a.ip} and host ${b.ip}`, async () => {
        await lab.ssh(a, to.ips.map(ip => `ip netns exec ${pod(lab, a).name} ping ${v6(ip) ? '-6 ' : ''}-q -c 10 -i 0.1 ${ip}`).join(' && '), { timeoutMs: 60_000 })
      })
      const wg = (l: string): boolean => {
        const m = /IP ([\d.]+)\.(\d+) > ([\d.]+)\.(\d+): UDP, length/.exec(l)
        return m !== null && m[2] === '51820' && m[4] === '51820' && [m[1], m[3]].sort().join() === [a.ip, b.ip].sort().join()
      }
      // ARP (the nodes resolving each other's MAC) is no IP packet and carries nothing of the pods.
      const ip = lines.filter(l => !/ ARP, /.test(l))
      const notWg = ip.filter(l => !wg(l))
      expect(ip.length >= 40, `captured ${ip.length} IP packets between ${a.name} and ${b.name} for 20 pod pings (and 20 replies)`)
      expect(notWg.length === 0, `not WireGuard UDP/51820:\n  ${notWg.slice(0, 10).join('\n  ')}`)
      expect(!lines.some(l => /10\.244\.|fd00:10:244:|ICMP/.test(l)), 'pod addresses or ICMP visible on the underlay')
      return `${ip.length} IP packets ${a.name}<->${b.name}, all UDP ${a.ip}:51820 <-> ${b.ip}:51820, no pod address, no ICMP`
    }
  },
  {
    name: 'masquerade',
    what: 'PODMESH_MASQUERADE=true works in the unit\'s sandbox: a pod reaches 192.0.2.1 only through NAT; pod to pod keeps its source',
    run: async lab => {
      const n1 = lab.vm(1)
      const n2 = lab.vm(2)
      const p1 = pod(lab, n1)
      const chain = await lab.ssh(n1, 'iptables -t nat -S PODMESH-MASQ')
      expect(/-j MASQUERADE/.test(chain), `no MASQUERADE rule in PODMESH-MASQ:\n${chain}`)
      // The host namespace has no route to the pod CIDRs: replies come back only to a NATed source.
      let answered = false
      const seen = await capture(lab, `icmp and host ${BRIDGE_IP}`, async () => {
        answered = (await lab.sshRun(n1, `ip netns exec ${p1.name} ping -c 3 -W 3 -q ${BRIDGE_IP}`, { timeoutMs: 30_000 })).code === 0
      })
      expect(answered, `${n1.name}/${p1.name} -> ${BRIDGE_IP}: no reply`)
      const requests = seen.filter(l => l.includes('echo request'))
      expect(requests.length >= 3 && requests.every(l => l.includes(`IP ${n1.ip} > ${BRIDGE_IP}`)), `echo requests on the bridge should come from ${n1.ip}:\n  ${seen.join('\n  ')}`)
      // No NAT between pods: the remote pod sees the client pod's own address.
      const dst = pod(lab, n2)
      await lab.ssh(n2, `rm -f /run/lab-tcpdump.*; setsid timeout 40 ip netns exec ${dst.name} tcpdump -l -n -c 3 -i eth0 "icmp[icmptype] = icmp-echo" >/run/lab-tcpdump.out 2>/run/lab-tcpdump.err </dev/null & ` +
        'for i in $(seq 100); do grep -q "listening on" /run/lab-tcpdump.err && exit 0; sleep 0.2; done; cat /run/lab-tcpdump.err; exit 1', { timeoutMs: 40_000 })
      await lab.ssh(n1, `ip netns exec ${p1.name} ping -c 3 -i 0.2 -q ${dst.ips[0] ?? ''}`, { timeoutMs: 30_000 })
      const inPod = await lab.ssh(n2, 'for i in $(seq 100); do pgrep -x tcpdump >/dev/null || break; sleep 0.2; done; cat /run/lab-tcpdump.out')
      expect(inPod.split('\n').filter(l => l.includes('echo request')).length === 3 && inPod.split('\n').filter(l => l.includes('echo request')).every(l => l.includes(`IP ${p1.ips[0] ?? ''} > `)),
        `in ${n2.name}/${dst.name} the echo requests should come from ${p1.ips[0] ?? ''}:\n${inPod}`)
      return `pod -> ${BRIDGE_IP} seen from ${n1.ip} (NAT); pod -> remote pod seen from ${p1.ips[0] ?? ''} (no NAT)`
    }
  },
  {
    name: 'sandbox',
    what: `the unit's sandbox as systemd applies it: exposure below ${MAX_EXPOSURE}, the settings, 3 network capabilities, seccomp, read-only /run, 0600 state files, memory and tasks well under MemoryMax/TasksMax`,
    run: async lab => {
      const details = await Promise.all(lab.vms.map(async vm => {
        const out = await lab.ssh(vm, [
          'systemd-analyze security --no-pager podmeshd | tail -n 1',
          'echo ---',
          `systemctl show podmeshd ${Object.keys(SANDBOX_SETTINGS).map(k => `-p ${k}`).join(' ')}`,
          'echo ---',
          'P=$(systemctl show -p MainPID --value podmeshd); grep -E "^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp|VmHWM|VmRSS|Threads):" /proc/$P/status',
          'echo ---',
          // In podmeshd's own mount namespace: /run read-only, its writable paths writable.
          'nsenter -t $P -m sh -c \'touch /run/podmesh-sandbox-probe 2>&1; echo "run=$?"; touch /run/wireguard/.probe && rm /run/wireguard/.probe; echo "wireguard=$?"; touch /var/lib/podmesh/.probe && rm /var/lib/podmesh/.probe; echo "state=$?"; touch /run/xtables.lock; echo "lock=$?"\'',
          'echo ---',
          'find /var/lib/podmesh -mindepth 1 -printf "%m %p\\n"',
          'echo ---',
          'C=/sys/fs/cgroup/system.slice/podmeshd.service; echo "$(cat $C/memory.peak) $(cat $C/pids.current)"'
        ].join('\n'))
        const [score = '', show = '', status = '', mounts = '', files = '', cg = ''] = out.split('---\n')
        const exposure = Number(/exposure level for podmeshd\.service: ([\d.]+)/.exec(score)?.[1])
        expect(exposure < MAX_EXPOSURE, `${vm.name}: systemd-analyze security podmeshd: ${score.trim()} (must be below ${MAX_EXPOSURE})`)
        const shown = Object.fromEntries(show.trim().split('\n').map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
        const wrong = Object.entries(SANDBOX_SETTINGS).filter(([k, v]) => shown[k] !== v).map(([k, v]) => `${k}=${shown[k] ?? '(none)'} (want ${v})`)
        expect(wrong.length === 0, `${vm.name}: systemctl show podmeshd:\n  ${wrong.join('\n  ')}`)
        const st = Object.fromEntries(status.trim().split('\n').map(l => l.split(/:\s+/) as [string, string]))
        for (const k of ['CapEff', 'CapPrm', 'CapBnd', 'CapAmb']) expect(st[k] === NET_CAPS, `${vm.name}: podmeshd's ${k} is ${st[k] ?? '?'}, want ${NET_CAPS} (NET_BIND_SERVICE, NET_ADMIN, NET_RAW)`)
        expect(st.Seccomp === '2' && st.NoNewPrivs === '1', `${vm.name}: podmeshd runs without its syscall filter (Seccomp ${st.Seccomp ?? '?'}, NoNewPrivs ${st.NoNewPrivs ?? '?'})`)
        expect(/Read-only file system/.test(mounts) && /run=1/.test(mounts), `${vm.name}: /run is writable in podmeshd's mount namespace:\n${mounts}`)
        for (const w of ['wireguard', 'state', 'lock']) expect(mounts.includes(`${w}=0`), `${vm.name}: podmeshd cannot write its ${w} path:\n${mounts}`)
        const loose = files.trim().split('\n').filter(l => l !== '' && (parseInt(l.split(' ')[0] ?? '0', 8) & 0o077) !== 0)
        expect(files.trim() !== '', `${vm.name}: /var/lib/podmesh is empty`)
        expect(loose.length === 0, `${vm.name}: state files readable by group or others (UMask=0077):\n  ${loose.join('\n  ')}`)
        const [peak = NaN, tasks = NaN] = cg.trim().split(' ').map(Number)
        const rssMb = Number((st.VmHWM ?? '').replace(/ kB$/, '')) / 1024
        expect(peak < Number(SANDBOX_SETTINGS.MemoryMax) / 2, `${vm.name}: the unit's memory peak ${(peak / 2 ** 20).toFixed(0)} MiB is not well under MemoryMax`)
        expect(tasks < Number(SANDBOX_SETTINGS.TasksMax) / 4, `${vm.name}: ${tasks} tasks is not well under TasksMax`)
        return { exposure, rssMb, peakMb: peak / 2 ** 20, tasks, threads: st.Threads ?? '?', files: files.trim().split('\n').length }
      }))
      const d = details[0]
      return `exposure ${details.map(x => x.exposure).join('/')} (< ${MAX_EXPOSURE}); caps NET_BIND_SERVICE+NET_ADMIN+NET_RAW, seccomp on, /run read-only, state files 0600; ` +
        `podmeshd RSS peak ${details.map(x => x.rssMb.toFixed(0)).join('/')} MiB, unit memory peak ${details.map(x => x.peakMb.toFixed(0)).join('/')} MiB, ${details.map(x => x.tasks).join('/')} tasks (${d?.threads ?? '?'} threads)`
    }
  },
  {
    name: 'masquerade-legacy',
    what: 'with iptables-legacy (no lock file, no legacy module loaded) podmeshd starts in its sandbox, masquerades v4 and v6, and a pod reaches 192.0.2.1 through it',
    run: async lab => {
      const vm = lab.vm(2)
      const p = pod(lab, vm)
      try {
        // A fresh legacy node: its lock file is made by the first iptables-legacy call, its modules
        // loaded by iptables-legacy's own modprobe; neither may happen in the sandbox.
        await lab.ssh(vm, `set -e; systemctl stop podmeshd; ${dropMasq('nft')}; ${dropMasq('legacy')}; ${UNLOAD_LEGACY}; rm -f /run/xtables.lock; ${iptablesVariant('legacy')}; iptables --version`, { timeoutMs: 120_000 })
        const start = await lab.sshRun(vm, 'systemctl start podmeshd; curl -s -m 3 http://127.0.0.1:9475/readyz', { timeoutMs: 180_000 })
        if (!start.stdout.startsWith('ready')) {
          const log = await lab.sshRun(vm, 'journalctl -u podmeshd -n 5 -o cat --no-pager | cut -c1-400')
          fail(`${vm.name}: podmeshd with iptables-legacy not ready after start (exit ${start.code}): ${start.stdout.trim()} ${start.stderr.trim()}\n${log.stdout}`)
        }
        const rules = await lab.ssh(vm, 'iptables-legacy -t nat -S PODMESH-MASQ; ip6tables-legacy -t nat -S PODMESH-MASQ; iptables-legacy -t nat -S POSTROUTING')
        expect((rules.match(/-j MASQUERADE/g) ?? []).length === 2 && rules.includes('-j PODMESH-MASQ'), `${vm.name}: legacy masquerade rules missing:\n${rules}`)
        let answered = false
        const seen = await capture(lab, `icmp and host ${BRIDGE_IP}`, async () => {
          answered = (await lab.sshRun(vm, `ip netns exec ${p.name} ping -c 3 -W 3 -q ${BRIDGE_IP}`, { timeoutMs: 30_000 })).code === 0
        })
        expect(answered, `${vm.name}/${p.name} -> ${BRIDGE_IP}: no reply through the legacy masquerade`)
        const requests = seen.filter(l => l.includes('echo request'))
        expect(requests.length >= 3 && requests.every(l => l.includes(`IP ${vm.ip} > ${BRIDGE_IP}`)), `echo requests should come from ${vm.ip}:\n  ${seen.join('\n  ')}`)
      } finally {
        // Back to the node as it was: nft, podmeshd's rules there, no legacy rules or modules.
        await lab.sshRun(vm, `systemctl stop podmeshd; ${dropMasq('legacy')}; ${UNLOAD_LEGACY}; ${iptablesVariant('nft')}; systemctl start podmeshd`, { timeoutMs: 180_000 })
      }
      await waitReady(lab, vm, 60_000)
      const back = await lab.ssh(vm, 'iptables -t nat -S PODMESH-MASQ')
      expect(/-j MASQUERADE/.test(back), `${vm.name}: after switching back to iptables-nft, no MASQUERADE rule:\n${back}`)
      return `${vm.name}: iptables-legacy, /run/xtables.lock absent and no legacy module before the start: ready, PODMESH-MASQ v4+v6, pod -> ${BRIDGE_IP} seen from ${vm.ip}; back on nft`
    }
  },
  {
    name: 'userspace-sandbox',
    what: 'wireguard-go (userspace mode) runs in podmeshd\'s sandbox: it daemonizes, opens /dev/net/tun, takes its config over its socket',
    run: async lab => {
      const vm = lab.vm(1)
      const ifname = 'pmprobe0'
      const out = await lab.ssh(vm, `sandboxed sh -c 'set -e; grep -E "^(Seccomp|CapEff):" /proc/self/status; wireguard-go ${ifname} >/dev/null 2>&1; ip link set ${ifname} up; ` +
        `wg genkey > /run/wireguard/${ifname}.key; wg set ${ifname} private-key /run/wireguard/${ifname}.key listen-port 51999; rm /run/wireguard/${ifname}.key; ` +
        `wg show ${ifname} listen-port; ps -o rss=,nlwp= -C wireguard-go; ip link del ${ifname}'`, { timeoutMs: 60_000 })
      expect(/Seccomp:\s+2/.test(out) && out.includes(NET_CAPS), `the probe did not run in the sandbox:\n${out}`)
      const [, port = '', ps = ''] = /\n(\d+)\n\s*(\d+\s+\d+)/.exec(out) ?? []
      expect(port === '51999', `wireguard-go in the sandbox did not take its config (listen-port ${port}):\n${out}`)
      const [rss = 0, threads = 0] = ps.trim().split(/\s+/).map(Number)
      const left = await lab.ssh(vm, `ip link show ${ifname} 2>/dev/null; pgrep -a -x wireguard-go; true`)
      expect(left.trim() === '', `probe leftovers on ${vm.name}: ${left}`)
      return `${vm.name}: wireguard-go under seccomp with the unit's 3 network capabilities only: device up, listen-port set over its socket; idle RSS ${(rss / 1024).toFixed(0)} MiB, ${threads} threads`
    }
  },
  {
    name: 'restart-no-loss',
    what: '`systemctl restart podmeshd` while a pod pings across at 20/s loses nothing',
    run: async lab => {
      const vm = lab.vm(2)
      let restartS = 0
      const detail = await noLossAcross(lab, lab.vm(1), vm, async () => {
        const t0 = Date.now()
        const out = await lab.ssh(vm, 'systemctl restart podmeshd; curl -s -m 3 http://127.0.0.1:9475/readyz', { timeoutMs: 180_000 })
        restartS = (Date.now() - t0) / 1000
        expect(out.startsWith('ready'), `${vm.name}: after the restart returned, /readyz said: ${out.trim()}`)
      })
      return `${vm.name} restarted in ${restartS.toFixed(1)} s (ready when it returned); ${detail}`
    }
  },
  {
    name: 'kill9-adopt',
    what: 'kill -9 of podmeshd: systemd restarts it, the new process adopts the kernel device, nothing is lost',
    run: async lab => {
      const vm = lab.vm(3)
      const ifindex = async (): Promise<string> => (await lab.ssh(vm, `cat /sys/class/net/${WG}/ifindex`)).trim()
      const before = await ifindex()
      const pid = await mainPid(lab, vm)
      expect(pid > 0, `${vm.name}: podmeshd has no main PID`)
      const since = (await lab.ssh(vm, 'date +%s')).trim()
      let back = 0
      const detail = await noLossAcross(lab, lab.vm(1), vm, async () => {
        const t0 = Date.now()
        await lab.ssh(vm, `kill -9 ${pid}`)
        await waitFor(`${vm.name}: podmeshd restarted by systemd`, 90_000, async () => {
          const now = await mainPid(lab, vm)
          return now > 0 && now !== pid && (await readyz(lab, vm)).startsWith('ready')
        })
        back = (Date.now() - t0) / 1000
      })
      const after = await ifindex()
      expect(after === before, `${vm.name}: ${WG} was re-created (ifindex ${before} -> ${after}), not adopted`)
      const log = await lab.ssh(vm, `journalctl _SYSTEMD_UNIT=podmeshd.service --since @${since} -o cat --no-pager`)
      expect(!log.includes(`device ${WG}: create`), `${vm.name}: the new podmeshd created ${WG} again:\n${log}`)
      expect(log.includes('data plane applied; ready'), `${vm.name}: no "ready" from the new podmeshd in the journal`)
      return `${vm.name}: pid ${pid} killed, new podmeshd ready after ${back.toFixed(1)} s, ${WG} ifindex ${after} kept; ${detail}`
    }
  },
  {
    name: 'drift',
    what: 'a podmesh route (both families) and a peer deleted by hand are back within one resync (PODMESH_RESYNC_INTERVAL=5s)',
    run: async lab => {
      const [a, b] = [lab.vm(1), lab.vm(2)]
      const rec = await nodeRecord(lab, b.name)
      const [c4 = '', c6 = ''] = [rec.podCIDRs.find(c => !v6(c)), rec.podCIDRs.find(v6)]
      await lab.ssh(a, `set -e; ip route del ${c4} dev ${WG}; ip -6 route del ${c6} dev ${WG}; wg set ${WG} peer ${rec.publicKey} remove`)
      const state = async (): Promise<boolean[]> => {
        const out = await lab.ssh(a, `ip route show proto 211; ip -6 route show proto 211; wg show ${WG} peers`)
        return [out.includes(c4), out.includes(c6), out.includes(rec.publicKey)]
      }
      expect((await state()).every(x => !x), `${a.name}: the hand-made drift did not take`)
      const t0 = Date.now()
      await waitFor(`${a.name}: routes to ${c4}, ${c6} and the peer of ${b.name} back`, 30_000, async () => (await state()).every(Boolean), 250)
      const s = (Date.now() - t0) / 1000
      const failures = await pingFrom(lab, pod(lab, b).ips.map(ip => ({ vm: a, from: pod(lab, a).name, ip, label: `${a.name} -> ${b.name} ${ip}` })))
      expect(failures.length === 0, `after the repair: ${failures.join(', ')}`)
      return `${a.name}: routes ${c4}, ${c6} and ${b.name}'s peer repaired after ${s.toFixed(1)} s; pods reach each other again`
    }
  },
  {
    name: 'journal',
    what: '`journalctl -u podmeshd` holds podmeshd\'s structured (pino JSON) log lines',
    run: async lab => {
      const vm = lab.vm(2)
      const out = await lab.ssh(vm, 'journalctl -u podmeshd -o cat --no-pager _SYSTEMD_UNIT=podmeshd.service')
      const lines = out.split('\n').filter(l => l.trim() !== '')
      const bad = lines.filter(l => {
        try {
          const v = JSON.parse(l) as Record<string, unknown>
          return typeof v.level !== 'number' || typeof v.msg !== 'string' || typeof v.time !== 'number' || v.node !== vm.name
        } catch { return true }
      })
      expect(lines.length >= 5, `only ${lines.length} lines from podmeshd in the journal`)
      expect(bad.length === 0, `lines that are not podmeshd's JSON:\n  ${bad.slice(0, 5).join('\n  ')}`)
      expect(lines.some(l => l.includes('"msg":"data plane applied; ready"')), 'no "data plane applied; ready" line')
      return `${vm.name}: ${lines.length} lines, every one JSON with level, time, msg, node`
    }
  },
  {
    name: 'reboot',
    what: 'a rebooted VM comes back with podmeshd running, the same subnets and key, and its new pods in the matrix',
    run: async lab => {
      const vm = lab.vm(3)
      const before = await nodeRecord(lab, vm.name)
      const key = (await lab.ssh(vm, `wg show ${WG} public-key`)).trim()
      const bootId = (await lab.ssh(vm, 'cat /proc/sys/kernel/random/boot_id')).trim()
      const t0 = Date.now()
      // In a second, so this ssh returns first; a transient timer's default accuracy is a minute.
      await lab.ssh(vm, 'systemd-run --no-block --on-active=1 --timer-property=AccuracySec=100ms systemctl reboot')
      await sleep(3000)
      await waitFor(`${vm.name} back from the reboot`, 240_000, async () => {
        await lab.reconnect(vm, 240_000)
        return (await lab.ssh(vm, 'cat /proc/sys/kernel/random/boot_id')).trim() !== bootId
      }, 2000)
      const up = (Date.now() - t0) / 1000
      await waitReady(lab, vm, 120_000)
      const ready = (Date.now() - t0) / 1000
      const after = await nodeRecord(lab, vm.name)
      const keyAfter = (await lab.ssh(vm, `wg show ${WG} public-key`)).trim()
      expect(JSON.stringify(after.podCIDRs) === JSON.stringify(before.podCIDRs), `subnets changed: ${before.podCIDRs.join(',')} -> ${after.podCIDRs.join(',')}`)
      expect(keyAfter === key && after.publicKey === key, `key changed: ${key} -> ${keyAfter} (record: ${after.publicKey})`)
      expect(/^\s+wireguard /m.test(await lab.ssh(vm, `ip -d link show ${WG}`)), `${vm.name}: after the reboot ${WG} is not a kernel WireGuard link`)
      // The pods' namespaces died with the boot; the node gets new ones, as a kubelet would make
      // (new names: host-local still holds the old pods' addresses).
      const newBoot = (await lab.ssh(vm, 'cat /proc/sys/kernel/random/boot_id')).trim().slice(0, 4)
      lab.state.pods = lab.state.pods.filter(p => p.node !== vm.name)
      for (const name of [`b${newBoot}p1`, `b${newBoot}p2`]) lab.state.pods.push(await lab.addPod(vm, name))
      lab.save()
      let m = await matrix(lab)
      for (let i = 0; i < 5 && m.failures.length > 0; i++) { await sleep(2000); m = await matrix(lab) }
      expect(m.failures.length === 0, `after the reboot:\n  ${m.failures.join('\n  ')}`)
      return `${vm.name}: ssh after ${up.toFixed(1)} s, podmeshd ready after ${ready.toFixed(1)} s; subnets ${after.podCIDRs.join(' ')} and key kept; ${m.pings} pings answered`
    }
  },
  {
    name: 'diff-clean',
    what: '`podmeshctl diff` on every node: etcd\'s desired state is what the kernel has (exit 0)',
    run: async lab => {
      const outs = await Promise.all(lab.vms.map(async vm => {
        const o = await lab.sshRun(vm, `${CTL} diff "$(hostname)"`, { timeoutMs: 120_000 })
        expect(o.code === 0, `${vm.name}: podmeshctl diff exit ${o.code}:\n${o.stdout}${o.stderr}`)
        return `${vm.name}: ${o.stdout.trim().split('\n').pop() ?? ''}`
      }))
      return outs.join('; ')
    }
  }
]

export async function runChecks (lab: VmLab, opts: { only?: string[], log?: (r: CheckResult) => void } = {}): Promise<CheckResult[]> {
  const chosen = opts.only === undefined ? CHECKS : CHECKS.filter(c => opts.only?.includes(c.name))
  const unknown = (opts.only ?? []).filter(n => !CHECKS.some(c => c.name === n))
  if (unknown.length > 0) throw new VmLabError(`unknown check(s): ${unknown.join(', ')}; there are: ${CHECKS.map(c => c.name).join(', ')}`)
  const results: CheckResult[] = []
  for (const c of chosen) {
    const t0 = Date.now()
    let r: CheckResult
    try {
      r = { name: c.name, ok: true, seconds: 0, detail: await c.run(lab) }
    } catch (e) {
      r = { name: c.name, ok: false, seconds: 0, detail: (e as Error).message }
    }
    r.seconds = (Date.now() - t0) / 1000
    results.push(r)
    opts.log?.(r)
  }
  return results
}

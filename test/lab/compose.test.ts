// The docker-compose lab end to end (scripts/compose-lab): up (a private dockerd when no engine
// runs, the locally built base image, the podmesh image), the check service's ping matrix,
// down, and the host left as it was: firewall, routes and forwarding sysctls unchanged, both
// while the lab runs and after it is gone. Skipped, with the reason, only where a probe of the
// machine (before any script of ours runs) finds that no Docker engine can run; once it can,
// every failure of our scripts fails the test, their "no engine" exit 2 included. Takes a
// minute warm, a few cold (debootstrap, npm ci in the image).
import t from 'tap'
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'

const repo = join(__dirname, '..', '..')
const lab = join(repo, 'scripts', 'compose-lab')

interface Outcome { code: number, stdout: string, stderr: string }

const run = async (file: string, args: string[], timeoutMs = 60_000): Promise<Outcome> =>
  await new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', e => { clearTimeout(timer); reject(e) })
    child.on('close', code => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr }) })
  })

const sh = async (command: string): Promise<string> => (await run('sh', ['-c', command])).stdout

/** What the lab must never change on the host, normalised (no counters, no timestamps). */
async function hostState (): Promise<Record<string, string>> {
  const strip = (s: string): string => s.split('\n')
    .filter(l => !l.startsWith('#'))
    .map(l => l.replace(/\[\d+:\d+\]/g, '').replace(/counter packets \d+ bytes \d+/g, 'counter'))
    .join('\n')
  return {
    iptables: strip(await sh('iptables-save 2>/dev/null')),
    ip6tables: strip(await sh('ip6tables-save 2>/dev/null')),
    nft: strip(await sh('nft list ruleset 2>/dev/null')),
    routes4: await sh('ip -4 route show'),
    routes6: await sh('ip -6 route show | grep -v "^fe80::/64"'),
    sysctl: await sh('cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null')
  }
}

const tail = (s: string, n = 40): string => s.trimEnd().split('\n').slice(-n).join('\n')

/**
 * Why no Docker engine can run on this machine, or undefined when one can: root (a private
 * dockerd, debootstrap), a cgroup filesystem, and an engine that answers or a dockerd to start —
 * installed, or installable (scripts/lab-docker-deps installs Debian's docker.io with apt-get).
 * Asks the machine, never our scripts: their failures are what the test is for.
 */
async function noEngineReason (): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'the compose lab needs root for its private dockerd'
  let cgroups: string[] = []
  try { cgroups = readdirSync('/sys/fs/cgroup') } catch { /* none */ }
  if (cgroups.length === 0) return 'no cgroup filesystem at /sys/fs/cgroup'
  const has = async (cmd: string): Promise<boolean> => (await run('sh', ['-c', `command -v ${cmd}`])).code === 0
  if (await has('dockerd') || await has('apt-get')) return undefined
  if ((await run('sh', ['-c', 'timeout 10 docker version'])).code === 0) return undefined
  return 'no dockerd, no apt-get to install one, and no engine answering'
}

t.setTimeout(30 * 60_000)

t.test('compose lab: up, ping matrix, down, host untouched', async t => {
  const noEngine = await noEngineReason()
  if (noEngine !== undefined) {
    t.plan(0, `no Docker engine can run here: ${noEngine}`)
    return
  }
  const before = await hostState()
  const bridges = async (): Promise<string> => await sh('ip -o link show | grep -o " br-[0-9a-f]*" | sort')
  const bridgesBefore = await bridges()
  let down: Outcome | undefined
  const takeDown = async (): Promise<Outcome> => {
    down ??= await run(lab, ['down'], 180_000)
    return down
  }
  t.teardown(async () => { await takeDown() })

  const started = Date.now()
  const up = await run(lab, ['up'], 25 * 60_000)
  // The machine can run an engine: exit 2 ("no engine") is our scripts failing to start one.
  t.equal(up.code, 0, 'compose-lab up succeeds', { stderr: tail(up.stderr) })
  if (up.code !== 0) return
  t.comment(`up took ${Math.round((Date.now() - started) / 1000)} s`)

  const during = await hostState()
  t.strictSame(during, before, 'while the lab runs, the host firewall, routes and sysctls are as before')

  const check = await run(lab, ['check'], 12 * 60_000)
  t.match(check.stdout, /^RESULT ok /m, 'the check ends with RESULT ok', { output: tail(check.stdout, 60), stderr: tail(check.stderr) })
  t.equal(check.code, 0, 'the check service exits 0')
  t.notMatch(check.stdout, /FAIL/, 'no ping failed')
  // Six pods (two per node), each with an IPv4 and an IPv6 address, were reported and probed.
  const podLines = check.stdout.split('\n').filter(l => /^node\d: pod1 \S+ \S+; pod2 \S+ \S+$/.test(l))
  t.equal(podLines.length, 3, 'each node reports two pods with both address families')
  // 6 pods x 5 other pods + 3 nodes x 4 remote pods, each pinged on both families: 84 pings.
  const answered = /\((\d+)\/(\d+) pings answered/.exec(check.stdout)
  t.equal(answered?.[2], '84', 'the whole matrix was probed')
  t.equal(answered?.[1], answered?.[2], 'every ping was answered')
  t.match(check.stdout, /^\/podmesh\/default\/nodes\/node1$/m, 'the topology printed from etcd holds the nodes')

  const d = await takeDown()
  t.equal(d.code, 0, 'compose-lab down succeeds and reports the host firewall unchanged', { stderr: tail(d.stderr) })
  t.strictSame(await hostState(), before, 'after down, the host firewall, routes and sysctls are as before')
  t.equal(await bridges(), bridgesBefore, 'no docker bridge of the lab is left on the host')
})

// `podmeshctl doctor` against a real etcd: the etcd check follows etcd's reachability (and the
// exit code with it), clock skew is measured from etcd's Date header, the CNI and WireGuard
// checks report what this machine has, and the containerd check reads the config and dirs it is
// pointed at (temp files here). Read-only on the host (it only reads sysctls, links and files).
import t from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { startEtcd } from '../harness/etcd'

const ROOT = resolve(__dirname, '..', '..')
const CTL = join(ROOT, 'cmd', 'podmeshctl.ts')
const TS = `--import=file://${join(ROOT, 'node_modules/@tapjs/typescript/dist/esm/import.mjs')}`

interface Check { check: string, result: 'OK' | 'WARN' | 'FAIL', detail: string, fix?: string }

async function ctl (args: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    execFile(process.execPath, [TS, CTL, ...args], { timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

t.test('doctor', async t => {
  const etcd = await startEtcd(t)
  const base = ['--etcd-endpoints', etcd.endpoint, '--public-address', '127.0.0.1']
  const init = await ctl([...base.slice(0, 2), 'init', '--ipv4-cidr', '10.244.0.0/16'])
  t.equal(init.code, 0, init.stderr)

  const ok = await ctl([...base, 'doctor', '-o', 'json'])
  const checks = JSON.parse(ok.stdout) as Check[]
  const by = (name: string): Check | undefined => checks.find(c => c.check === name)
  t.equal(by('etcd')?.result, 'OK', JSON.stringify(by('etcd')))
  t.equal(by('etcd tls')?.result, 'WARN', 'plain http is flagged')
  t.equal(by('clock skew')?.result, 'OK')
  t.match(by('clock skew')?.detail, /against http:\/\/127\.0\.0\.1/, 'skew was measured')
  const cniPresent = ['bridge', 'host-local', 'portmap', 'loopback'].every(p => existsSync(`/usr/lib/cni/${p}`) || existsSync(`/opt/cni/bin/${p}`))
  t.equal(by('cni plugins')?.result, cniPresent ? 'OK' : 'FAIL')
  t.equal(by('wireguard')?.result, existsSync('/sys/module/wireguard') || existsSync('/usr/bin/wireguard-go') ? 'OK' : 'FAIL')
  t.match(by('underlay mtu'), { result: 'OK', detail: /^lo 127\.0\.0\.1 mtu \d+/ })
  t.ok(by('net.ipv4.ip_forward'), 'forwarding checked')
  t.notOk(by('net.ipv6.conf.all.forwarding'), 'an IPv4-only cluster does not need IPv6 forwarding')
  t.equal(ok.code, checks.some(c => c.result === 'FAIL') ? 1 : 0, 'exit code follows FAIL')
  for (const c of checks) if (c.result !== 'OK') t.ok(c.fix, `${c.check} says how to fix it`)
  t.match((await ctl([...base, 'doctor'])).stdout, /^CHECK\s+RESULT\s+DETAIL\s+FIX$/m)

  // containerd pointed at an empty plugin dir, then at Debian's plugins and podmesh's conflist dir.
  const dir = t.testdir()
  const emptyBin = join(dir, 'bin')
  const confDir = join(dir, 'net.d')
  mkdirSync(emptyBin)
  mkdirSync(confDir)
  writeFileSync(join(confDir, '10-podmesh.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'podmesh', plugins: [{ type: 'bridge', ipam: { type: 'host-local' } }, { type: 'portmap' }] }))
  const cri = (bin: string): string => `version = 2\n[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "${bin}"\n  conf_dir = "${confDir}"\n`
  writeFileSync(join(dir, 'empty.toml'), cri(emptyBin))
  writeFileSync(join(dir, 'debian.toml'), cri('/usr/lib/cni'))
  const containerd = (out: string): Check | undefined => (JSON.parse(out) as Check[]).find(c => c.check === 'containerd cni')
  const lacking = await ctl([...base, 'doctor', '-o', 'json', '--containerd-config', join(dir, 'empty.toml'), '--cni-conf-dir', confDir])
  t.match(containerd(lacking.stdout), { result: 'FAIL', detail: new RegExp(`looks for plugins in ${emptyBin} .*which lacks bridge, host-local, portmap, loopback`), fix: /bin_dir = "\/usr\/lib\/cni"/ })
  t.equal(lacking.code, 1, 'a runtime that cannot find the plugins fails the doctor')
  const fine = await ctl([...base, 'doctor', '-o', 'json', '--cni-conf-dir', confDir], { PODMESH_CONTAINERD_CONFIG: join(dir, 'debian.toml') })
  t.match(containerd(fine.stdout), cniPresent && existsSync('/usr/lib/cni/loopback')
    ? { result: 'OK', detail: new RegExp(`reads ${confDir}/10-podmesh\\.conflist`) }
    : { result: 'FAIL' }, 'the config from PODMESH_CONTAINERD_CONFIG, the conflist in conf_dir')
  const elsewhere = await ctl([...base, 'doctor', '-o', 'json', '--containerd-config', join(dir, 'debian.toml'), '--cni-conf-dir', join(dir, 'other')])
  t.match(containerd(elsewhere.stdout), { result: 'FAIL', fix: new RegExp(`conf_dir = "${join(dir, 'other')}"`) }, 'podmeshd writing where containerd does not read fails')

  await etcd.stop()
  const down = await ctl([...base, '--etcd-endpoints', etcd.endpoint, 'doctor', '-o', 'json'])
  t.equal(down.code, 1, 'exit 1 when etcd is unreachable')
  const downChecks = JSON.parse(down.stdout) as Check[]
  t.match(downChecks.find(c => c.check === 'etcd'), { result: 'FAIL', fix: /etcd/ })
})

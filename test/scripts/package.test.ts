// scripts/package builds the Debian package a node installs: read back with dpkg-deb (control
// fields, conffiles, contents with owners and modes, production deps only), extracted and run
// with this machine's node, and its maintainer scripts run in a private mount namespace. Never
// installed here (a shared machine with no systemd): the VM lab installs it for real.
import t from 'tap'
import { execFile } from 'node:child_process'
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

const ROOT = resolve(__dirname, '..', '..')
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
const LOCK = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
const APP = 'usr/lib/podmesh'

interface Ran { code: number, stdout: string, stderr: string }

/** An operator's environment: none of npm's, tap's or the TypeScript loader's variables. */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|TAP|NODE_OPTIONS$)/i.test(k))),
  // The host's node first on PATH: the shebang `#!/usr/bin/env node` finds it.
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
  ...extra
})

async function run (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<Ran> {
  return await new Promise(resolve => {
    execFile(cmd, args, { env: opts.env ?? cleanEnv(), timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr })
    })
  })
}

interface Entry { mode: string, owner: string, path: string, target?: string }

/** `dpkg-deb -c` lines: "-rw------- root/root 2553 2026-12-01 03:54 ./etc/default/podmeshd". */
function parseContents (text: string): Map<string, Entry> {
  const out = new Map<string, Entry>()
  for (const line of text.split('\n').filter(l => l !== '')) {
    const m = /^(\S+) (\S+)\s+\d+ \S+ \S+ \.\/(.*?)(?: -> (.*))?$/.exec(line)
    if (m === null) throw new Error(`unexpected dpkg-deb -c line: ${line}`)
    const path = (m[3] ?? '').replace(/\/$/, '')
    out.set(path, { mode: m[1] ?? '', owner: m[2] ?? '', path, ...(m[4] !== undefined ? { target: m[4] } : {}) })
  }
  return out
}

t.test('scripts/package', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-package-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))

  const built = await run(join(ROOT, 'scripts', 'package'), ['--out', join(dir, 'out')], { timeoutMs: 120_000 })
  t.equal(built.code, 0, built.stderr)
  const deb = built.stdout.trim().split('\n').at(-1) ?? ''
  t.equal(deb, join(dir, 'out', `podmesh_${PKG.version}_amd64.deb`), 'the last line on stdout is the .deb\'s path')
  if (built.code !== 0) return

  await t.test('control fields and conffiles', async t => {
    const fields = ['Package', 'Version', 'Architecture', 'Maintainer', 'Depends', 'Recommends', 'Suggests', 'Description']
    const f = await run('dpkg-deb', ['-f', deb, ...fields])
    t.equal(f.code, 0, f.stderr)
    const value = (name: string): string => new RegExp(`^${name}: (.*)$`, 'm').exec(f.stdout)?.[1] ?? ''
    t.equal(value('Package'), 'podmesh')
    t.equal(value('Version'), PKG.version, 'version from package.json')
    t.equal(value('Architecture'), 'amd64', 'netlink\'s native binary is linux-x64')
    t.match(value('Maintainer'), /^.+ <[^@\s]+@[^>\s]+>$/, 'Name <email>')
    t.same(value('Depends').split(', ').sort(),
      ['containernetworking-plugins', 'iproute2', 'iptables', 'nodejs (>= 20)', 'systemd', 'wireguard-tools'], 'what podmeshd runs: node, wg, ip, iptables, systemd-notify, the CNI plugins')
    t.equal(value('Recommends'), 'wireguard-go', 'userspace WireGuard where the kernel has no module')
    t.equal(value('Suggests'), 'etcd-client')
    t.match(value('Description'), /\S/)
    const conffiles = await run('dpkg-deb', ['-I', deb, 'conffiles'])
    t.equal(conffiles.stdout, '/etc/default/podmeshd\n', 'the env file is a conffile: an upgrade keeps the operator\'s edits')
  })

  await t.test('contents', async t => {
    const c = await run('dpkg-deb', ['-c', deb])
    t.equal(c.code, 0, c.stderr)
    const entries = parseContents(c.stdout)
    const at = (p: string): Entry | undefined => entries.get(p)
    t.same([...entries.values()].filter(e => e.owner !== 'root/root').map(e => e.path), [], 'everything owned by root')

    t.match(at('usr/bin/podmeshd'), { mode: /^l/, target: '../lib/podmesh/dist/cmd/podmeshd.js' })
    t.match(at('usr/bin/podmeshctl'), { mode: /^l/, target: '../lib/podmesh/dist/cmd/podmeshctl.js' })
    t.match(at(`${APP}/dist/cmd/podmeshd.js`), { mode: '-rwxr-xr-x' })
    t.match(at(`${APP}/dist/cmd/podmeshctl.js`), { mode: '-rwxr-xr-x' })
    t.match(at('usr/lib/cni/podmesh'), { mode: /^l/, target: '../podmesh/dist/cmd/podmesh-cni.js' }, 'the CNI plugin, by its type, in the CNI plugin dir')
    t.match(at(`${APP}/dist/cmd/podmesh-cni.js`), { mode: '-rwxr-xr-x' })
    t.match(at(`${APP}/package.json`), { mode: '-rw-r--r--' }, 'package.json: podmeshd reports its version from it')
    t.match(at('lib/systemd/system/podmeshd.service'), { mode: '-rw-r--r--' })
    t.match(at('etc/default/podmeshd'), { mode: '-rw-------' }, 'the env file may hold the etcd password: 0600')
    t.match(at('usr/share/doc/podmesh/copyright'), { mode: '-rw-r--r--' })
    t.same([...entries.keys()].filter(p => /\.(ts|map)$/.test(p) && p.startsWith(`${APP}/dist/`)), [], 'no sources or source maps in dist')

    const prebuilds = [...entries.keys()].filter(p => p.endsWith('.node'))
    t.same(prebuilds, [`${APP}/node_modules/netlink/prebuilds/linux-x64/node.napi.node`], 'netlink\'s linux-x64 binary, no other architecture\'s')

    // package-lock.json says which packages are dev-only: none of those, all of the others.
    const lock = Object.entries(LOCK.packages).filter(([k]) => k.startsWith('node_modules/'))
    const shipped = (k: string): boolean => entries.has(`${APP}/${k}/package.json`)
    const devShipped = lock.filter(([k, v]) => v.dev === true && shipped(k)).map(([k]) => k)
    const prodMissing = lock.filter(([k, v]) => v.dev !== true && !shipped(k)).map(([k]) => k)
    t.ok(lock.some(([k, v]) => k === 'node_modules/typescript' && v.dev === true), 'the lock marks typescript dev-only (the check below can fail)')
    t.same(devShipped, [], 'no devDependencies (tap, typescript, …)')
    t.same(prodMissing, [], 'every production dependency')
  })

  await t.test('extracted, it runs with this machine\'s node', async t => {
    const x = join(dir, 'root')
    const ex = await run('dpkg-deb', ['-x', deb, x])
    t.equal(ex.code, 0, ex.stderr)

    const unit = readFileSync(join(x, 'lib/systemd/system/podmeshd.service'), 'utf8')
    t.equal(unit, readFileSync(join(ROOT, 'scripts/podmeshd.service'), 'utf8'), 'the unit is scripts/podmeshd.service')
    t.equal(readFileSync(join(x, 'etc/default/podmeshd'), 'utf8'), readFileSync(join(ROOT, 'scripts/podmeshd.env.example'), 'utf8'), 'the env file is the example')
    const execStart = /^ExecStart=(\S+)$/m.exec(unit)?.[1] ?? ''
    t.doesNotThrow(() => accessSync(join(x, execStart), constants.X_OK), `the unit's ExecStart ${execStart} is executable in the package`)
    const docs = /^Documentation=file:\/\/(\S+)$/m.exec(unit)?.[1] ?? ''
    t.ok(docs !== '' && statSync(join(x, docs), { throwIfNoEntry: false })?.isFile(), `the unit's Documentation ${docs} is in the package`)

    const ctl = await run(join(x, 'usr/bin/podmeshctl'), ['--help'])
    t.equal(ctl.code, 0, ctl.stderr)
    t.match(ctl.stdout, /^usage: podmeshctl /)
    const d = await run(join(x, 'usr/bin/podmeshd'), ['--help'])
    t.equal(d.code, 0, d.stderr)
    t.match(d.stdout, /^Usage: podmeshd /)

    // The CNI plugin as a runtime runs it: by its type in the plugin dir, environment and stdin.
    const plugin = join(x, 'usr/lib/cni/podmesh')
    const version = await run(plugin, [], { env: cleanEnv({ CNI_COMMAND: 'VERSION' }) })
    t.equal(version.code, 0, version.stderr)
    t.match(JSON.parse(version.stdout || '{}'), { supportedVersions: ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'] }, 'the plugin answers VERSION')
    const podDir = join(dir, 'pods')
    const prevResult = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/var/run/netns/p' }], ips: [{ interface: 0, address: '10.22.0.9/24' }] }
    const add = await new Promise<Ran>(resolve => {
      const child = execFile(plugin, [], { env: cleanEnv({ CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'pkgtest', CNI_NETNS: '/var/run/netns/p', CNI_IFNAME: 'eth0', CNI_PATH: join(x, 'usr/lib/cni') }) },
        (err, stdout, stderr) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr }))
      child.stdin?.end(JSON.stringify({ cniVersion: '1.0.0', name: 'podmesh', type: 'podmesh', podDir, prevResult }))
    })
    t.equal(add.code, 0, add.stdout + add.stderr)
    t.strictSame(JSON.parse(add.stdout || '{}'), prevResult, 'ADD passes the result through')
    t.match(JSON.parse(readFileSync(join(podDir, 'pkgtest.json'), 'utf8')), { id: 'pkgtest', ips: ['10.22.0.9'] }, 'and writes the pod\'s report')

    // The bundled netlink's native binary does real rtnetlink (read-only: this namespace's links),
    // and the daemon finds its version in /usr/lib/podmesh/package.json.
    const probe = `const { Rtnl } = require(${JSON.stringify(join(x, APP, 'dist/lib/dataplane/rtnl.js'))})
      const { packageVersion } = require(${JSON.stringify(join(x, APP, 'dist/lib/daemon/status-report.js'))})
      const r = Rtnl.open()
      r.links().then(l => { console.log(JSON.stringify({ lo: l.some(k => k.name === 'lo'), version: packageVersion() })); r.close() })`
    const p = await run(process.execPath, ['-e', probe])
    t.equal(p.code, 0, p.stderr)
    t.same(JSON.parse(p.stdout || '{}'), { lo: true, version: PKG.version })
  })

  await t.test('maintainer scripts', async t => {
    const ctrl = join(dir, 'control')
    t.equal((await run('dpkg-deb', ['-e', deb, ctrl])).code, 0)
    for (const s of ['postinst', 'prerm', 'postrm']) {
      t.equal(statSync(join(ctrl, s)).mode & 0o777, 0o755, `${s} is executable`)
      t.equal((await run('sh', ['-n', join(ctrl, s)])).code, 0, `${s} parses`)
    }

    // systemd does not run here, and the host's may not be touched: each script runs in a private
    // mount namespace with tmpfs over /run, /var/lib and /etc/systemd/system, and a `systemctl`
    // on PATH that records its arguments (and fails when told to).
    const stub = join(dir, 'stub')
    const log = join(dir, 'systemctl.log')
    await run('sh', ['-c', `mkdir -p ${stub} && printf '#!/bin/sh\\necho "$*" >> ${log}\\n[ -z "$SYSTEMCTL_FAIL" ]\\n' > ${stub}/systemctl && chmod +x ${stub}/systemctl`])
    interface Case { systemd: boolean, setup?: string, check?: string, fail?: boolean }
    const outcome = (r: { code: number, calls: string[] }): { code: number, calls: string[] } => ({ code: r.code, calls: r.calls })
    const script = async (name: string, args: string[], c: Case): Promise<{ code: number, calls: string[], stderr: string }> => {
      rmSync(log, { force: true })
      const inside = [
        'mount -t tmpfs tmpfs /run', 'mount -t tmpfs tmpfs /var/lib', 'mount -t tmpfs tmpfs /etc/systemd/system',
        ...(c.systemd ? ['mkdir -p /run/systemd/system'] : []),
        c.setup ?? ':',
        `${join(ctrl, name)} ${args.map(a => `'${a}'`).join(' ')}`,
        c.check ?? ':'
      ].join(' && ')
      const r = await run('unshare', ['--mount', '--propagation', 'private', 'sh', '-ec', inside],
        { env: cleanEnv({ PATH: `${stub}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...(c.fail === true ? { SYSTEMCTL_FAIL: '1' } : {}) }) })
      const calls = (() => { try { return readFileSync(log, 'utf8').split('\n').filter(l => l !== '') } catch { return [] } })()
      return { code: r.code, calls, stderr: r.stderr }
    }

    t.strictSame(outcome(await script('postinst', ['configure', ''], { systemd: true })), { code: 0, calls: ['daemon-reload'] }, 'install: reload only, never enable or start')
    t.strictSame(outcome(await script('postinst', ['configure', '0.0.9'], { systemd: true })), { code: 0, calls: ['daemon-reload', '--no-block try-restart podmeshd.service'] }, 'upgrade: a running podmeshd moves to the new code')
    t.strictSame(outcome(await script('postinst', ['configure', ''], { systemd: false })), { code: 0, calls: [] }, 'no systemd (a chroot): nothing')
    t.strictSame(outcome(await script('prerm', ['remove'], { systemd: true })), { code: 0, calls: ['stop podmeshd.service'] }, 'remove: stopped')
    t.strictSame(outcome(await script('prerm', ['upgrade', '0.2.0'], { systemd: true })), { code: 0, calls: [] }, 'upgrade: not stopped (postinst restarts it)')
    t.match(await script('prerm', ['remove'], { systemd: true, fail: true }), { code: 0, stderr: /could not stop podmeshd\.service/ }, 'a failed stop is said, and the removal goes on')

    const state = 'mkdir -p /var/lib/podmesh /etc/systemd/system/multi-user.target.wants && touch /var/lib/podmesh/private.key && ln -s /lib/systemd/system/podmeshd.service /etc/systemd/system/multi-user.target.wants/podmeshd.service'
    t.strictSame(outcome(await script('postrm', ['remove'], { systemd: true, setup: state, check: 'test -f /var/lib/podmesh/private.key && test -L /etc/systemd/system/multi-user.target.wants/podmeshd.service' })),
      { code: 0, calls: ['daemon-reload'] }, 'remove keeps the node\'s state and enablement')
    const gone = 'test ! -e /var/lib/podmesh && test ! -L /etc/systemd/system/multi-user.target.wants/podmeshd.service'
    t.strictSame(outcome(await script('postrm', ['purge'], { systemd: true, setup: state, check: gone })), { code: 0, calls: ['daemon-reload'] }, 'purge forgets the state dir and the enable link')
    t.strictSame(outcome(await script('postrm', ['purge'], { systemd: false, check: gone })), { code: 0, calls: [] }, 'purge again: nothing left to do, no error')
  })
})

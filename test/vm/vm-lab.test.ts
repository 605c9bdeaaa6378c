// The VM lab end to end (issue #14, docs/vm-lab.md): `scripts/vm-lab up` (host packages, the
// cached Debian image, the podmesh .deb, 3 VMs under QEMU/TCG with the stock Debian kernel and
// systemd, podmesh installed with apt and started as the README says), `check` (each check one
// assertion here: kernel WireGuard, Type=notify, v4+v6 matrix, encrypted underlay, masquerade,
// the unit's sandbox, masquerade with iptables-legacy, wireguard-go in the sandbox, restart and
// kill -9 without loss, drift, journal, reboot, diff), and `down`, also after a
// failure; then nothing of the run may be left. About 6 minutes warm on the 2-core machine, ~2
// more when the image is built cold. scripts/test runs this file last and alone: three emulated
// CPUs keep both cores busy, which the namespace labs' timing assertions must not share.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHECKS } from './checks'
import type { LabState } from './vm-lab'

const repo = join(__dirname, '..', '..')
const vmLab = join(repo, 'scripts', 'vm-lab')

interface Outcome { code: number, stdout: string, stderr: string, seconds: number }

const run = async (args: string[], timeoutMs: number): Promise<Outcome> =>
  await new Promise((resolve, reject) => {
    const t0 = Date.now()
    const child = spawn(vmLab, args, { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', e => { clearTimeout(timer); reject(e) })
    child.on('close', code => { clearTimeout(timer); resolve({ code: code ?? -1, stdout, stderr, seconds: (Date.now() - t0) / 1000 }) })
  })

const tail = (s: string, n = 30): string => s.trimEnd().split('\n').slice(-n).join('\n')

t.setTimeout(45 * 60_000)

t.test('VM lab: up, every check, down', async t => {
  if (process.getuid?.() !== 0) {
    t.plan(0, 'the VM lab needs root (network namespace, taps, QEMU)')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'podmesh-vm-test-'))
  const stateFile = join(dir, 'state.json')
  let lab: LabState | undefined
  let down: Outcome | undefined
  const takeDown = async (): Promise<Outcome> => {
    down ??= await run(['down', '--state', stateFile], 120_000)
    return down
  }
  t.teardown(async () => {
    await takeDown()
    rmSync(dir, { recursive: true, force: true })
  })

  // scripts/test builds the package beside the namespace suite and names it here; alone, `up` builds it.
  const deb = process.env.PODMESH_VM_DEB
  const up = await run(['up', '--state', stateFile, ...(deb !== undefined && deb !== '' ? ['--deb', deb] : [])], 25 * 60_000)
  if (existsSync(stateFile)) lab = JSON.parse(readFileSync(stateFile, 'utf8')) as LabState
  t.equal(up.code, 0, `scripts/vm-lab up (${up.seconds.toFixed(0)} s)`, { output: tail(up.stdout + up.stderr) })
  if (up.code !== 0) return
  t.comment(`up:\n${up.stdout.trim()}`)

  const check = await run(['check', '--state', stateFile], 15 * 60_000)
  t.comment(`check (${check.seconds.toFixed(0)} s):\n${check.stdout.trim()}`)
  const lines = [...check.stdout.matchAll(/^(ok {2}|FAIL) {2}(\S+) +([\d.]+) s {2}(.*)$/gm)]
  for (const c of CHECKS) {
    const m = lines.find(l => l[2] === c.name)
    t.ok(m !== undefined, `check ${c.name} ran`)
    if (m !== undefined) t.equal(m[1], 'ok  ', `${c.name} (${m[3] ?? '?'} s): ${c.what}`, { found: m[4] })
  }
  t.equal(check.code, 0, `scripts/vm-lab check exit status\n${tail(check.stderr, 10)}`)

  const d = await takeDown()
  t.equal(d.code, 0, 'scripts/vm-lab down', { stderr: d.stderr })
  if (lab !== undefined) {
    const netns = await new Promise<string>(resolve => {
      const p = spawn('ip', ['netns', 'list'], { stdio: ['ignore', 'pipe', 'ignore'] })
      let out = ''
      p.stdout.on('data', x => { out += String(x) })
      p.on('close', () => resolve(out))
    })
    t.notOk(netns.split('\n').some(l => l.split(' ')[0] === lab?.ns), `namespace ${lab.ns} removed`)
    t.notOk(existsSync(lab.dir), `run dir ${lab.dir} removed`)
    for (const vm of lab.vms) {
      const cmdline = vm.pid === undefined ? '' : (() => { try { return readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8') } catch { return '' } })()
      t.notOk(cmdline.includes(lab.dir), `QEMU of ${vm.name} ended`)
    }
  }
  t.notOk(existsSync(stateFile), 'state file removed')
})

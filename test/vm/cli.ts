// The VM lab's command line, run by scripts/vm-lab (which first installs the host packages,
// builds the image and the podmesh package):
//   up    --image DIR --deb FILE [--state FILE] [--nodes N]
//   check [--state FILE] [--only NAME,NAME]     prints each check and its time; exit 1 on a failure
//   down  [--state FILE]
//   ssh   N [SCRIPT]                            a shell (or SCRIPT) on node-N as root
// The state file (default /run/podmesh-vm-lab/state.json) is how check and down find the lab.

import { spawnSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { CHECKS, runChecks } from './checks'
import { VmLab, isVmLabError } from './vm-lab'

const DEFAULT_STATE = '/run/podmesh-vm-lab/state.json'
const say = (line: string): void => { process.stderr.write(`vm-lab: ${line}\n`) }

async function main (argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      state: { type: 'string', default: DEFAULT_STATE },
      image: { type: 'string' },
      deb: { type: 'string' },
      nodes: { type: 'string', default: '3' },
      only: { type: 'string' }
    }
  })
  const stateFile = values.state
  switch (cmd) {
    case 'up': {
      if (values.image === undefined || values.deb === undefined) throw new Error('up needs --image DIR and --deb FILE (scripts/vm-lab passes them)')
      const t0 = Date.now()
      const lab = await VmLab.up({ stateFile, image: values.image, deb: values.deb, nodes: Number(values.nodes), log: say }).catch(e => {
        say(`up failed; what it made is left for a look (console logs in the run dir) until: scripts/vm-lab down${stateFile !== DEFAULT_STATE ? ` --state ${stateFile}` : ''}`)
        throw e
      })
      const s = lab.state
      console.log(`VM lab ${s.id} up in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${s.vms.length} Debian VMs (namespace ${s.ns}, run dir ${s.dir})`)
      for (const vm of s.vms) {
        const pods = s.pods.filter(p => p.node === vm.name).map(p => `${p.name} ${p.ips.join(' ')}`).join('; ')
        console.log(`  ${vm.name}  ${vm.ip}  boot ${s.timings[`boot ${vm.name}`]?.toFixed(0)} s, podmeshd start ${s.timings[`start ${vm.name}`]?.toFixed(0)} s  pods: ${pods}`)
      }
      console.log(`  phases: ${Object.entries(s.timings).filter(([k]) => !k.includes(' ')).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')}`)
      console.log('Next: scripts/vm-lab check; scripts/vm-lab ssh 1; scripts/vm-lab down')
      return 0
    }
    case 'check': {
      const lab = VmLab.load(stateFile)
      const only = values.only?.split(',').map(x => x.trim()).filter(x => x !== '')
      const t0 = Date.now()
      const results = await runChecks(lab, {
        ...(only !== undefined ? { only } : {}),
        log: r => console.log(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name.padEnd(20)} ${r.seconds.toFixed(1).padStart(6)} s  ${r.detail.split('\n').join('\n' + ' '.repeat(35))}`)
      })
      const failed = results.filter(r => !r.ok).length
      console.log(`checks: ${results.length - failed} passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(0)} s)`)
      return failed === 0 ? 0 : 1
    }
    case 'down': {
      let lab: VmLab
      try { lab = VmLab.load(stateFile) } catch (e) {
        if (isVmLabError(e)) { say(e.message); return 0 }
        throw e
      }
      const problems = await lab.down()
      for (const p of problems) say(p)
      say(`lab ${lab.state.id} removed`)
      return problems.length === 0 ? 0 : 1
    }
    case 'ssh': {
      const lab = VmLab.load(stateFile)
      const vm = lab.vm(Number(positionals[0]))
      const r = spawnSync('ip', lab.sshCommand(vm, positionals.slice(1).join(' ')), { stdio: 'inherit' })
      return r.status ?? 1
    }
    default:
      throw new Error(`usage: scripts/vm-lab up|check|down|ssh N  (checks: ${CHECKS.map(c => c.name).join(', ')})`)
  }
}

main(process.argv.slice(2)).then(code => process.exit(code), e => { say((e as Error).message); process.exit(1) })

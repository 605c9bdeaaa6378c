// The node-local flags podmeshd shares with podmeshctl diff and doctor are declared once
// (lib/config/node-flags.ts): both accept and refuse the same values with the same message, read
// the same environment variables, and list each flag in --help from the one table.
import t from 'tap'
import { assertHelpLists } from '../harness/help-lines'
import { parseArgs } from 'node:util'
import { NODE_FLAGS, type NodeField } from '../../lib/config/node-flags'
import { helpText, parseDaemonOptions } from '../../lib/config/daemon-options'
import { DIFF_FLAGS, diffHelp, diffOptions } from '../../lib/ctl/diff'
import { DOCTOR_FLAGS, doctorHelp, doctorOptions } from '../../lib/ctl/doctor'
import { nodeFlagValues } from '../../lib/ctl/node-flags'
import { globalOptions } from '../../lib/ctl/global-flags'

type Outcome = string | { refused: string }

function daemon (field: NodeField, argv: string[], env: Record<string, string>): Outcome {
  try {
    const o = parseDaemonOptions({ argv: ['--node-name', 'n1', ...argv], env })
    if (o === 'help') throw new Error('unexpected help')
    return o[field] as string
  } catch (e) {
    return { refused: (e as Error).message }
  }
}

function ctl (field: NodeField, argv: string[], env: Record<string, string>): Outcome {
  const fields = (DIFF_FLAGS as readonly NodeField[]).includes(field) ? DIFF_FLAGS : DOCTOR_FLAGS
  const command = fields === DIFF_FLAGS ? ['diff', diffOptions] as const : ['doctor', doctorOptions] as const
  try {
    const { values } = parseArgs({ args: [command[0], ...argv], options: { ...globalOptions, ...command[1] }, strict: true, allowPositionals: true })
    return nodeFlagValues(fields, values, env)[field] as string
  } catch (e) {
    return { refused: (e as Error).message }
  }
}

const rows: Array<[NodeField, string]> = [
  ['publicAddress', '192.0.2.11'], ['publicAddress', '2001:db8::11'], ['publicAddress', '192.0.2.300'], ['publicAddress', 'eth0'], ['publicAddress', ''],
  ['publicInterface', 'eth0'], ['publicInterface', 'eth0.100'],
  ['wgInterface', 'wg0'], ['wgInterface', 'a-very-long-ifname'], ['wgInterface', 'wg:0'], ['wgInterface', ''],
  ['vxlanInterface', 'vx0'], ['vxlanInterface', 'vx/0'], ['vxlanInterface', '..'],
  ['cniConfDir', '/etc/cni/net.d'], ['cniConfDir', '/var/lib/podmesh/cni'], ['cniConfDir', 'cni/net.d'], ['cniConfDir', ''],
  ['cniNetwork', 'podmesh'], ['cniNetwork', 'pod.mesh-2'], ['cniNetwork', 'pod mesh'], ['cniNetwork', '../x']
]

t.test('podmeshd and podmeshctl diff/doctor agree on every value, from flags and from the environment', async t => {
  for (const [field, value] of rows) {
    const s = NODE_FLAGS[field]
    const argv = [`--${s.flag}=${value}`]
    const env = { [s.env]: value }
    t.strictSame(daemon(field, argv, {}), ctl(field, argv, {}), `flag: ${argv[0] ?? ''}`)
    t.strictSame(daemon(field, [], env), ctl(field, [], env), `env: ${s.env}=${value}`)
    t.strictSame(ctl(field, [], env), ctl(field, argv, {}), `env = flag: ${s.env}=${value}`)
    const r = ctl(field, argv, {})
    if (typeof r !== 'string') t.match(r.refused, new RegExp(`^--${s.flag}: "`), `names the flag and the value: ${r.refused}`)
  }
  for (const f of Object.keys(NODE_FLAGS) as NodeField[]) t.ok(rows.some(([g]) => g === f), `${f} is exercised`)
})

t.test('both --help texts list every shared node flag from the one table', async t => {
  assertHelpLists(t, Object.values(NODE_FLAGS), [['podmeshd', helpText()], ['podmeshctl', diffHelp + doctorHelp]])
})

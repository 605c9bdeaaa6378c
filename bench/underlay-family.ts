// Underlay family (issue #12, acceptance 1): bulk TCP between pods on different nodes over an
// IPv6-only underlay against the same over an IPv4-only one, measured in the same run: two netns
// labs per mode (WireGuard, VXLAN, mixed across locations), iperf3 pod→pod in back-to-back
// rounds (order alternating), compared by the median of the rounds' ratios — the machine's load
// moves a single userspace-WireGuard run by 2× within seconds, so only close transfers are
// compared. Prints the figures and the 0.9× target; never fails on them.
//
//   npm run -s bench:underlay-family [-- --rounds 7 --seconds 3 --modes wireguard,vxlan,mixed] [--json]
// (smoke: mixed only — it runs both tunnels — 1 round of 1 s)
import { Lab, waitFor, type LabOptions } from '../test/lab/cluster'
import { iperfMbps } from '../test/lab/traffic'
import { printReport, type Row } from './report'
import { sized } from './smoke'

const arg = (name: string, def: string): string => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] ?? def : def
}
const ROUNDS = Number(arg('--rounds', sized('7', '1')))
const SECONDS = Number(arg('--seconds', sized('3', '1')))

const allModes: Array<{ name: string, opts: Omit<LabOptions, 'underlay'>, iperf: [number, number] }> = [
  { name: 'wireguard', opts: { nodes: 2, podsPerNode: 1, backend: 'wireguard' }, iperf: [0, 1] },
  { name: 'vxlan', opts: { nodes: 2, podsPerNode: 1, backend: 'vxlan' }, iperf: [0, 1] },
  { name: 'mixed', opts: { nodes: 3, podsPerNode: 1, backend: 'wireguard', vxlanWithinLocation: true, locations: ['east', 'east', 'west'] }, iperf: [0, 2] }
]
const MODE_NAMES = arg('--modes', sized('wireguard,vxlan,mixed', 'mixed')).split(',')
const unknownModes = MODE_NAMES.filter(n => !allModes.some(m => m.name === n))
if (unknownModes.length > 0) { process.stderr.write(`underlay-family: --modes: unknown ${unknownModes.join(', ')} (known: ${allModes.map(m => m.name).join(', ')})\n`); process.exit(2) }
const modes = allModes.filter(m => MODE_NAMES.includes(m.name))

async function main (): Promise<void> {
  const rows: Row[] = []
  for (const mode of modes) {
    const labs: Lab[] = []
    try {
      const [v6, v4] = await Promise.all([
        Lab.create({ ...mode.opts, dualStack: true, underlay: 'ipv6' }).then(l => { labs.push(l); return l }),
        Lab.create({ ...mode.opts, dualStack: true, underlay: 'ipv4' }).then(l => { labs.push(l); return l })
      ])
      for (const l of [v4, v6]) await waitFor('pods reach each other', 30_000, async () => (await l.podMatrix()).length === 0)
      const [i, j] = mode.iperf
      const run = async (lab: Lab): Promise<number> => {
        const server = lab.nodes[j]!.pods[0]!; const client = lab.nodes[i]!.pods[0]!
        return await iperfMbps(lab, server.ns, server.ips[0]!, client.ns, SECONDS)
      }
      const rounds: Array<{ v4: number, v6: number }> = []
      for (let r = 0; r < ROUNDS; r++) {
        if (r % 2 === 0) { const a = await run(v4); rounds.push({ v4: a, v6: await run(v6) }) } else { const b = await run(v6); rounds.push({ v6: b, v4: await run(v4) }) }
      }
      const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b)
      const mid = (xs: number[]): number => sorted(xs)[Math.floor(xs.length / 2)] ?? 0
      rows.push(
        { metric: `${mode.name}: pod→pod over IPv4 underlay (median)`, value: Math.round(mid(rounds.map(x => x.v4))), unit: 'Mbit/s' },
        { metric: `${mode.name}: pod→pod over IPv6 underlay (median)`, value: Math.round(mid(rounds.map(x => x.v6))), unit: 'Mbit/s' },
        { metric: `${mode.name}: IPv6 / IPv4 (median of rounds)`, value: Math.round(mid(rounds.map(x => x.v6 / x.v4)) * 100) / 100, unit: 'x', target: 0.9, targetKind: 'min', note: rounds.map(x => `${x.v4.toFixed(0)}/${x.v6.toFixed(0)}`).join(' ') }
      )
    } finally {
      for (const l of labs) await l.destroy()
    }
  }
  printReport('underlay-family', rows, { rounds: ROUNDS, seconds: SECONDS, modes: MODE_NAMES.join(',') })
}

main().catch(e => { console.error(e); process.exit(1) })

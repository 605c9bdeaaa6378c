// The MTU changes the daemon logs: each once, when it happens.
import t from 'tap'
import { mtuChanges } from '../../lib/mesh/mtu-change'
import type { MtuPlan } from '../../lib/mesh/desired'

const v4: MtuPlan = { wireguard: { transport: 'wireguard', mtu: 1440, fits: 1440 }, pod: 1440 }
const lowered: MtuPlan = { wireguard: { transport: 'wireguard', mtu: 1420, fits: 1420, limitedBy: { node: 'node-3', family: 6 } }, pod: 1420 }
const tooLarge: MtuPlan = { wireguard: { transport: 'wireguard', mtu: 1440, fits: 1420, limitedBy: { node: 'node-3', family: 6 }, override: 1440 }, pod: 1440 }

const cases: Array<{ name: string, before: MtuPlan | undefined, after: MtuPlan, want: ReturnType<typeof mtuChanges> }> = [
  { name: 'first pass, nothing limits: nothing to say', before: undefined, after: v4, want: [] },
  { name: 'unchanged: nothing to say', before: v4, after: v4, want: [] },
  { name: 'a peer at an IPv6 endpoint lowers the device', before: v4, after: lowered, want: [{ kind: 'lowered-by-peer', transport: 'wireguard', node: 'node-3', family: 6, mtu: 1420, fits: 1420, from: 1440 }] },
  { name: 'said once: the next pass is quiet', before: lowered, after: lowered, want: [] },
  { name: 'limited already on the first pass', before: undefined, after: lowered, want: [{ kind: 'lowered-by-peer', transport: 'wireguard', node: 'node-3', family: 6, mtu: 1420, fits: 1420 }] },
  { name: 'the peer leaves: the device goes back up', before: lowered, after: v4, want: [{ kind: 'changed', transport: 'wireguard', mtu: 1440, from: 1420 }] },
  {
    name: 'a config mtu that the new peer cannot carry',
    before: { wireguard: { transport: 'wireguard', mtu: 1440, fits: 1440, override: 1440 }, pod: 1440 },
    after: tooLarge,
    want: [
      { kind: 'lowered-by-peer', transport: 'wireguard', node: 'node-3', family: 6, mtu: 1440, fits: 1420 },
      { kind: 'override-too-large', transport: 'wireguard', mtu: 1440, fits: 1420, node: 'node-3', family: 6 }
    ]
  },
  { name: 'the override warning is said once', before: tooLarge, after: tooLarge, want: [] }
]
for (const c of cases) t.test(c.name, async t => { t.strictSame(mtuChanges(c.before, c.after), c.want) })

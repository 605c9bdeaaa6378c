// The path-MTU search as a table: a simulated path (its real MTU, whether its routers say "too
// big", whether the peer answers echo at all) answers each probe the search asks for; the
// verdict and the number of probes are checked.
import t from 'tap'
import { nextPathMtuStep, type Probe, type ProbeResult, type PathMtuVerdict } from '../../lib/mesh/path-mtu-search'

interface Path { mtu: number, says?: boolean, echo?: boolean, bogus?: number }

/** Runs the search against a simulated path; fails on more than 20 probes. */
function search (localMtu: number, minMtu: number, path: Path, granularity?: number): PathMtuVerdict {
  const probes: Probe[] = []
  for (let i = 0; i < 20; i++) {
    const step = nextPathMtuStep({ localMtu, minMtu, ...(granularity !== undefined ? { granularity } : {}) }, probes)
    if ('verdict' in step) return step.verdict
    const size = step.probe
    let result: ProbeResult
    if (path.echo === false) result = { kind: 'silent' }
    else if (size <= path.mtu) result = { kind: 'reply' }
    else if (path.bogus !== undefined) result = { kind: 'tooBig', mtu: path.bogus }
    else result = path.says === false ? { kind: 'silent' } : { kind: 'tooBig', mtu: path.mtu }
    probes.push({ size, result })
  }
  throw new Error(`no verdict after 20 probes: ${JSON.stringify(probes)}`)
}

const cases: Array<[string, number, number, Path, Partial<PathMtuVerdict>]> = [
  ['the whole path carries the interface MTU: one probe', 1500, 576, { mtu: 1500 }, { kind: 'known', mtu: 1500, probes: 1 }],
  ['jumbo end to end', 9000, 576, { mtu: 9000 }, { kind: 'known', mtu: 9000, probes: 1 }],
  ['a router names 1400: two probes', 1500, 576, { mtu: 1400 }, { kind: 'known', mtu: 1400, probes: 2, blackHole: false }],
  ['IPv6, a router names 1400', 1500, 1280, { mtu: 1400 }, { kind: 'known', mtu: 1400, probes: 2 }],
  ['jumbo NIC, a 1500 WAN in between', 9000, 576, { mtu: 1500 }, { kind: 'known', mtu: 1500, probes: 2 }],
  ['an ICMP black hole at 1400: bisected to the byte', 1500, 576, { mtu: 1400, says: false }, { kind: 'known', mtu: 1400, blackHole: true }],
  ['IPv6 black hole at 1280 (the floor)', 1500, 1280, { mtu: 1280, says: false }, { kind: 'known', mtu: 1280, blackHole: true }],
  ['a black hole, to within 8 bytes', 1500, 576, { mtu: 1403, says: false }, { kind: 'known' }],
  ['no echo at all: unknown after two probes', 1500, 576, { mtu: 1500, echo: false }, { kind: 'unknown', probes: 2 }],
  ['a forged "too big" below the floor is not believed', 1500, 1280, { mtu: 1400, bogus: 100 }, { kind: 'known', mtu: 1400 }]
]

for (const [name, local, min, path, want] of cases) {
  t.test(name, async t => {
    const v = search(local, min, path, name.includes('8 bytes') ? 8 : undefined)
    t.match(v, want)
    if (v.kind === 'known') {
      t.ok(v.mtu <= path.mtu, 'never above what the path carries')
      t.ok(v.mtu > path.mtu - (name.includes('8 bytes') ? 8 : 1), `within the granularity of the path's ${path.mtu}: ${v.mtu}`)
    }
    t.ok(v.probes <= 12, `${v.probes} probes`)
  })
}

t.test('a reply above a failure (the path narrowed during the search): the failure wins', async t => {
  const step = nextPathMtuStep({ localMtu: 1500, minMtu: 576 }, [
    { size: 1500, result: { kind: 'silent' } },
    { size: 576, result: { kind: 'reply' } },
    { size: 1038, result: { kind: 'reply' } },
    { size: 1500, result: { kind: 'reply' } }
  ])
  t.same(step, { probe: 1269 }, 'bisects between 1038 and 1500, ignoring the late reply at 1500')
})

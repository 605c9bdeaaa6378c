import t from 'tap'
import { gatewayAddresses, isCniConfigError, renderConflist, type Conflist, type ConflistInput } from '../../lib/mesh/cni-config'

const base: ConflistInput = {
  networkName: 'podmesh',
  bridge: 'pmbr0',
  podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
  clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
  mtu: 1420
}

const portmap = { type: 'portmap', capabilities: { portMappings: true }, snat: true } as const

function expected (ranges: Array<{ subnet: string, gateway: string }>, routes: string[], extra: { dataDir?: string, mtu?: number } = {}): Conflist {
  return {
    cniVersion: '1.0.0',
    name: 'podmesh',
    plugins: [
      {
        type: 'bridge',
        bridge: 'pmbr0',
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        mtu: extra.mtu ?? 1420,
        ipam: {
          type: 'host-local',
          ranges: ranges.map(r => [r]),
          routes: routes.map(dst => ({ dst })),
          ...(extra.dataDir !== undefined ? { dataDir: extra.dataDir } : {})
        }
      },
      portmap
    ]
  }
}

const v4 = { subnet: '10.244.1.0/24', gateway: '10.244.1.1' }
const v6 = { subnet: 'fd00:10:244:1::/64', gateway: 'fd00:10:244:1::1' }

const cases: Array<{ name: string, input: ConflistInput, want: Conflist, gateways: string[] }> = [
  {
    name: 'single stack IPv4: only IPv4 range and routes',
    input: { ...base, podCIDRs: ['10.244.1.0/24'] },
    want: expected([v4], ['10.244.0.0/16', '0.0.0.0/0']),
    gateways: ['10.244.1.1/24']
  },
  {
    name: 'single stack IPv6: only IPv6 range and routes',
    input: { ...base, podCIDRs: ['fd00:10:244:1::/64'], mtu: 1280 },
    want: expected([v6], ['fd00:10:244::/56', '::/0'], { mtu: 1280 }),
    gateways: ['fd00:10:244:1::1/64']
  },
  {
    name: 'dual stack: one range set per family, cluster and default routes of both',
    input: base,
    want: expected([v4, v6], ['10.244.0.0/16', 'fd00:10:244::/56', '0.0.0.0/0', '::/0']),
    gateways: ['10.244.1.1/24', 'fd00:10:244:1::1/64']
  },
  {
    name: 'dual stack given IPv6 first: same file (IPv4 first)',
    input: { ...base, podCIDRs: ['fd00:10:244:1::/64', '10.244.1.0/24'] },
    want: expected([v4, v6], ['10.244.0.0/16', 'fd00:10:244::/56', '0.0.0.0/0', '::/0']),
    gateways: ['10.244.1.1/24', 'fd00:10:244:1::1/64']
  },
  {
    name: 'dataDir is carried into host-local',
    input: { ...base, podCIDRs: ['10.244.1.0/24'], dataDir: '/tmp/lab/n1/cni' },
    want: expected([v4], ['10.244.0.0/16', '0.0.0.0/0'], { dataDir: '/tmp/lab/n1/cni' }),
    gateways: ['10.244.1.1/24']
  },
  {
    name: 'non-canonical IPv6 text is canonicalised; duplicate cluster CIDRs give one route',
    input: { ...base, podCIDRs: ['FD00:10:244:1:0:0:0:0/64'], clusterCIDRs: ['fd00:10:244::/56', 'fd00:10:244:0::/56'], mtu: 1400 },
    want: expected([v6], ['fd00:10:244::/56', '::/0'], { mtu: 1400 }),
    gateways: ['fd00:10:244:1::1/64']
  },
  {
    name: 'IPv4 node in a cluster with several IPv4 CIDRs: all are routed',
    input: { ...base, podCIDRs: ['10.245.0.0/24'], clusterCIDRs: ['10.244.0.0/16', '10.245.0.0/16', 'fd00:10:244::/56'] },
    want: expected([{ subnet: '10.245.0.0/24', gateway: '10.245.0.1' }], ['10.244.0.0/16', '10.245.0.0/16', '0.0.0.0/0']),
    gateways: ['10.245.0.1/24']
  }
]

for (const c of cases) {
  t.test(c.name, async t => {
    const got = renderConflist(c.input)
    t.strictSame(got, c.want)
    // What the file will hold must be plain JSON (no undefined members, no class instances).
    t.strictSame(JSON.parse(JSON.stringify(got)), c.want)
    t.strictSame(gatewayAddresses(c.input.podCIDRs), c.gateways)
  })
}

const bad: Array<{ name: string, input: Partial<ConflistInput>, field: string }> = [
  { name: 'no pod subnet', input: { podCIDRs: [] }, field: 'podCIDRs' },
  { name: 'two IPv4 subnets', input: { podCIDRs: ['10.244.1.0/24', '10.244.2.0/24'] }, field: 'podCIDRs' },
  { name: 'pod subnet with host bits', input: { podCIDRs: ['10.244.1.1/24'] }, field: 'podCIDRs' },
  { name: 'pod subnet too small for gateway and a pod', input: { podCIDRs: ['10.244.1.0/31'] }, field: 'podCIDRs' },
  { name: 'pod subnet outside the cluster CIDRs', input: { podCIDRs: ['10.99.1.0/24'] }, field: 'podCIDRs' },
  { name: 'IPv6 subnet with no IPv6 cluster CIDR', input: { podCIDRs: ['fd00:10:244:1::/64'], clusterCIDRs: ['10.244.0.0/16'] }, field: 'podCIDRs' },
  { name: 'bad cluster CIDR', input: { clusterCIDRs: ['10.244.0.0/33'] }, field: 'clusterCIDRs' },
  { name: 'IPv6 with MTU below 1280', input: { mtu: 1279 }, field: 'mtu' },
  { name: 'fractional MTU', input: { mtu: 1420.5 }, field: 'mtu' },
  { name: 'network name with a slash', input: { networkName: '../etc' }, field: 'networkName' },
  { name: 'bridge name longer than 15', input: { bridge: 'a-very-long-bridge' }, field: 'bridge' },
  { name: 'relative dataDir', input: { dataDir: 'var/lib/cni' }, field: 'dataDir' }
]

for (const c of bad) {
  t.test(`rejects: ${c.name}`, async t => {
    t.throws(() => renderConflist({ ...base, ...c.input }), { code: 'ECNICONFIG', field: c.field })
    // Asserted outside the catch: were nothing thrown, a check inside it would never run.
    let err: unknown
    try { renderConflist({ ...base, ...c.input }) } catch (e) { err = e }
    t.ok(isCniConfigError(err), 'typed error')
  })
}

t.test('gatewayAddresses rejects what renderConflist rejects', async t => {
  t.throws(() => gatewayAddresses(['10.244.1.0/24', '10.244.2.0/24']), { code: 'ECNICONFIG' })
  t.throws(() => gatewayAddresses(['not-a-cidr']), { code: 'ECNICONFIG' })
})

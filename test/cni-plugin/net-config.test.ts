// The network config on stdin and the pod's addresses in prevResult: what parses, and each
// refusal with its CNI code and a message naming the field.
import t from 'tap'
import { DEFAULT_POD_DIR, parseNetConfig } from '../../lib/cni-plugin/net-config'
import { podIps } from '../../lib/cni-plugin/pod-ips'
import { CNI_CODE, isCniError } from '../../lib/cni-plugin/cni-error'

const conf = (extra: Record<string, unknown> = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'podmesh', type: 'podmesh', ...extra })
const refusal = (fn: () => unknown): { code: number, msg: string } | undefined => {
  try { fn(); return undefined } catch (e) {
    if (!isCniError(e)) throw e
    return { code: e.code, msg: e.message }
  }
}

t.test('configs that parse', async t => {
  t.strictSame(parseNetConfig(conf()), { cniVersion: '1.0.0', name: 'podmesh', podDir: DEFAULT_POD_DIR, labels: {} })
  const labels = [{ key: 'app', value: 'web' }, { key: 'example.com/tier', value: '' }]
  t.strictSame(parseNetConfig(conf({ podDir: '/tmp/x', args: { cni: { labels } }, prevResult: { cniVersion: '1.0.0' } })),
    { cniVersion: '1.0.0', name: 'podmesh', podDir: '/tmp/x', labels: { app: 'web', 'example.com/tier': '' }, prevResult: { cniVersion: '1.0.0' } })
  t.strictSame(parseNetConfig(conf({ args: { cni: { labels: [{ key: '-bad', value: 'x' }] } } }), { forDel: true }).labels, {}, 'DEL does not read labels')
})

t.test('configs refused', async t => {
  const cases: Array<[string, string, number, RegExp]> = [
    ['not JSON', '{', CNI_CODE.decodeFailure, /not JSON/],
    ['not an object', '[]', CNI_CODE.decodeFailure, /not a JSON object/],
    ['no cniVersion', JSON.stringify({ name: 'n' }), CNI_CODE.invalidNetworkConfig, /cniVersion is missing/],
    ['unknown cniVersion', conf({ cniVersion: '9.9.9' }), CNI_CODE.incompatibleVersion, /cniVersion 9\.9\.9 is not supported/],
    ['no name', conf({ name: '' }), CNI_CODE.invalidNetworkConfig, /name is missing/],
    ['relative podDir', conf({ podDir: 'pods' }), CNI_CODE.invalidNetworkConfig, /podDir must be an absolute path/],
    ['labels not a list', conf({ args: { cni: { labels: { app: 'web' } } } }), CNI_CODE.invalidNetworkConfig, /args\.cni\.labels must be a list/],
    ['label without value', conf({ args: { cni: { labels: [{ key: 'app' }] } } }), CNI_CODE.invalidNetworkConfig, /args\.cni\.labels\[0\] must be/],
    ['bad label key', conf({ args: { cni: { labels: [{ key: 'app!', value: 'web' }] } } }), CNI_CODE.invalidNetworkConfig, /label key "app!" is not a valid label key/],
    ['bad label value', conf({ args: { cni: { labels: [{ key: 'app', value: 'we b' }] } } }), CNI_CODE.invalidNetworkConfig, /label app: "we b" is not a valid label value/],
    ['repeated label', conf({ args: { cni: { labels: [{ key: 'app', value: 'a' }, { key: 'app', value: 'b' }] } } }), CNI_CODE.invalidNetworkConfig, /label key "app" given twice/],
    ['too many labels', conf({ args: { cni: { labels: Array.from({ length: 65 }, (_, i) => ({ key: `k${i}`, value: 'v' })) } } }), CNI_CODE.invalidNetworkConfig, /has 65 labels, more than 64/],
    ['prevResult not an object', conf({ prevResult: 'x' }), CNI_CODE.invalidNetworkConfig, /prevResult must be an object/]
  ]
  for (const [name, text, code, msg] of cases) t.match(refusal(() => parseNetConfig(text)), { code, msg }, name)
})

t.test('pod addresses from prevResult', async t => {
  // As the bridge plugin answers: the bridge, the host veth, the pod's interface (sandbox).
  const bridge = {
    cniVersion: '1.0.0',
    interfaces: [{ name: 'cni0', mac: 'aa:aa:aa:aa:aa:aa' }, { name: 'veth1', mac: 'bb:bb:bb:bb:bb:bb' }, { name: 'eth0', mac: 'cc:cc:cc:cc:cc:cc', sandbox: '/var/run/netns/p1' }],
    ips: [{ interface: 2, address: '10.22.0.5/24', gateway: '10.22.0.1' }, { interface: 2, address: 'fd00:0:0:0::5/64' }, { interface: 0, address: '10.22.0.1/24' }]
  }
  t.strictSame(podIps(bridge), ['10.22.0.5', 'fd00::5'], 'only the sandbox interface\'s addresses, canonical, IPv4 first')
  t.strictSame(podIps({ ...bridge, ips: [bridge.ips[1], bridge.ips[0]] }), ['10.22.0.5', 'fd00::5'], 'IPv4 first whatever the order')
  t.strictSame(podIps({ ...bridge, ips: [...bridge.ips, { interface: 2, address: '10.22.0.6/24' }] }), ['10.22.0.5', 'fd00::5'], 'the first of each family')
  t.strictSame(podIps({ cniVersion: '0.2.0', ip4: { ip: '10.1.0.3/16' }, ip6: { ip: '2001:db8::3/64' } }), ['10.1.0.3', '2001:db8::3'], 'a 0.2.0 result')
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['no addresses at all', { cniVersion: '1.0.0' }, /no address on an interface inside the container/],
    ['only host-side addresses', { ...bridge, ips: [bridge.ips[2]] }, /no address on an interface inside the container/],
    ['no interface index', { ...bridge, ips: [{ address: '10.22.0.5/24' }] }, /no address on an interface inside the container/],
    ['bad address', { ...bridge, ips: [{ interface: 2, address: '10.22.0.300/24' }] }, /ips\[0\]: "10\.22\.0\.300\/24" is not an ip\/len address/],
    ['ips not a list', { ...bridge, ips: {} }, /ips must be a list/]
  ]
  for (const [name, prev, msg] of cases) t.match(refusal(() => podIps(prev)), { code: CNI_CODE.invalidNetworkConfig, msg }, name)
})

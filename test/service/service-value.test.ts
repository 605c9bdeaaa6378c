// services/<name> and pods/<node>/<id> values read back from etcd: what a writer stores parses to
// the same value; every hostile or broken value is refused with a ServiceValueError that names
// the key and the field.
import t from 'tap'
import {
  MAX_POD_VALUE_BYTES, MAX_SERVICE_VALUE_BYTES, isServiceValueError, parsePodValue, parseServiceValue, podValueText, serviceValueText
} from '../../lib/service/service-value'
import type { PodRecord, ServiceSpec } from '../../lib/service/types'

const SKEY = '/podmesh/default/services/web'
const PKEY = '/podmesh/default/pods/node-1/abc123'

const service = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  v: 1,
  name: 'web',
  type: 'ClusterIP',
  clusterIPs: ['10.96.0.10', 'fd00:96::a'],
  ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }, { protocol: 'udp', port: 53, targetPort: 53 }],
  selector: { app: 'web' },
  sessionAffinity: 'None',
  externalTrafficPolicy: 'Cluster',
  ...over
})
const nodePortService = (over: Record<string, unknown> = {}): Record<string, unknown> => service({
  type: 'NodePort',
  ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30080 }, { protocol: 'udp', port: 80, targetPort: 8080, nodePort: 30080 }],
  ...over
})
const pod = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  v: 1,
  id: 'abc123',
  node: 'node-1',
  ifname: 'eth0',
  ips: ['10.244.1.5', 'fd00:10:244:1::5'],
  namespace: 'default',
  name: 'web-1',
  labels: { app: 'web', tier: 'front' },
  ...over
})

const refusal = (f: () => unknown): unknown => { try { f(); return undefined } catch (e) { return e } }

t.test('good service values parse to exactly their validated fields', async t => {
  t.strictSame(parseServiceValue(SKEY, 'web', JSON.stringify(service())), service())
  t.strictSame(parseServiceValue(SKEY, 'web', JSON.stringify(nodePortService())), nodePortService(), 'a node port per protocol')
  t.strictSame(parseServiceValue(SKEY, 'web', JSON.stringify(service({ sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 10800 }))),
    service({ sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 10800 }))
  t.strictSame(parseServiceValue(SKEY, 'web', JSON.stringify(service({ clusterIPs: ['fd00:96::a'], selector: {} }))),
    service({ clusterIPs: ['fd00:96::a'], selector: {} }), 'IPv6 only; no selector (no endpoints)')
  const extra = parseServiceValue(SKEY, 'web', JSON.stringify(service({ future: { x: 1 }, ports: [{ protocol: 'tcp', port: 80, targetPort: 80, appProtocol: 'http' }] })))
  t.strictSame(extra, service({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80 }] }), 'unknown fields are ignored and not carried')
  t.strictSame(parseServiceValue(SKEY, 'web', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 1e2, targetPort: 8080 }] }))).ports[0],
    { protocol: 'tcp', port: 100, targetPort: 8080 }, '1e2 is the JSON number 100')
  const labels = parseServiceValue(SKEY, 'web', JSON.stringify(service({ selector: { constructor: 'x', 'example.com/team': 'a' } })))
  t.strictSame(labels.selector, { constructor: 'x', 'example.com/team': 'a' }, '"constructor" is a label key like any other')
  t.equal(Object.getPrototypeOf(labels.selector), Object.prototype)
})

t.test('hostile and broken service values, each refused naming the key and field', async t => {
  const huge = 'x'.repeat(MAX_SERVICE_VALUE_BYTES)
  const cases: Array<[string, string, string, RegExp]> = [
    ['not JSON', '{"v":1,', '', /value is not JSON/],
    ['an array', '[1,2]', '', /value must be a JSON object, got \[1,2\]/],
    ['null', 'null', '', /value must be a JSON object, got null/],
    ['a string', '"web"', '', /value must be a JSON object/],
    ['deeply nested arrays', '['.repeat(30_000) + ']'.repeat(30_000), '', /value must be a JSON object, got \[\[\[/],
    ['deeply nested selector', JSON.stringify(service()).replace('{"app":"web"}', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)), 'selector', /selector.a: \{"a":\{"a":\{\.\.\.\}\}\} is not a valid label value/],
    ['deeply nested version', '{"v":' + '['.repeat(20_000) + ']'.repeat(20_000) + '}', 'v', /unsupported value version \[\[\[\.\.\.\]\]\] \(expected 1\)/],
    ['too large', JSON.stringify(service({ pad: huge })), '', /value is \d+ bytes \(limit 65536\)/],
    ['version 2', JSON.stringify(service({ v: 2 })), 'v', /unsupported value version 2 \(expected 1\)/],
    ['version "1"', JSON.stringify(service({ v: '1' })), 'v', /unsupported value version "1"/],
    ['no version', JSON.stringify(service({ v: undefined })), 'v', /unsupported value version nothing/],
    ['another name', JSON.stringify(service({ name: 'db' })), 'name', /name "db" does not match the key's "web"/],
    ['a name no service can have', JSON.stringify(service({ name: 'Web/../x' })), 'name', /name "Web\/..\/x" is not a DNS label/],
    ['a huge name', JSON.stringify(service({ name: 'a'.repeat(10_000) })), 'name', /name "aaaa.*\.\.\. is not a DNS label/],
    ['name a number', JSON.stringify(service({ name: 7 })), 'name', /name 7 is not/],
    ['type LoadBalancer', JSON.stringify(service({ type: 'LoadBalancer' })), 'type', /type "LoadBalancer" is not ClusterIP or NodePort/],
    ['type lower-case', JSON.stringify(service({ type: 'clusterip' })), 'type', /type "clusterip" is not/],
    ['clusterIPs a string', JSON.stringify(service({ clusterIPs: '10.96.0.10' })), 'clusterIPs', /clusterIPs must be an array of 1-2 IP addresses/],
    ['clusterIPs empty', JSON.stringify(service({ clusterIPs: [] })), 'clusterIPs', /clusterIPs must be an array of 1-2/],
    ['three clusterIPs', JSON.stringify(service({ clusterIPs: ['10.96.0.1', 'fd00::1', '10.96.0.2'] })), 'clusterIPs', /1-2 IP addresses/],
    ['two IPv4 clusterIPs', JSON.stringify(service({ clusterIPs: ['10.96.0.1', '10.96.0.2'] })), 'clusterIPs[1]', /clusterIPs\[1\] 10.96.0.2: a second IPv4 address/],
    ['a clusterIP not an address', JSON.stringify(service({ clusterIPs: ['10.96.0.300'] })), 'clusterIPs[0]', /clusterIPs\[0\] "10.96.0.300" is not an IP address/],
    ['a clusterIP with a prefix', JSON.stringify(service({ clusterIPs: ['10.96.0.0/24'] })), 'clusterIPs[0]', /is not an IP address/],
    ['a clusterIP number', JSON.stringify(service({ clusterIPs: [167772170] })), 'clusterIPs[0]', /clusterIPs\[0\] 167772170 is not an IP address/],
    ['a clusterIP not canonical', JSON.stringify(service({ clusterIPs: ['FD00:96:0::A'] })), 'clusterIPs[0]', /"FD00:96:0::A" is not canonical \(expected "fd00:96::a"\)/],
    ['a mapped IPv4 clusterIP', JSON.stringify(service({ clusterIPs: ['::ffff:10.96.0.1'] })), 'clusterIPs[0]', /is not canonical/],
    ['a loopback clusterIP', JSON.stringify(service({ clusterIPs: ['127.0.0.1'] })), 'clusterIPs[0]', /127.0.0.1 is loopback/],
    ['the unspecified clusterIP', JSON.stringify(service({ clusterIPs: ['::'] })), 'clusterIPs[0]', /:: is the unspecified address/],
    ['a multicast clusterIP', JSON.stringify(service({ clusterIPs: ['224.0.0.1'] })), 'clusterIPs[0]', /is multicast/],
    ['ports missing', JSON.stringify(service({ ports: undefined })), 'ports', /ports must be an array of 1-256 ports, got nothing/],
    ['ports empty', JSON.stringify(service({ ports: [] })), 'ports', /ports must be an array of 1-256/],
    ['ports an object', JSON.stringify(service({ ports: { 0: { protocol: 'tcp', port: 80, targetPort: 80 } } })), 'ports', /ports must be an array/],
    ['too many ports', JSON.stringify(service({ ports: Array.from({ length: 257 }, (_, i) => ({ protocol: 'tcp', port: i + 1, targetPort: 80 })) })), 'ports', /1-256/],
    ['a port an array', JSON.stringify(service({ ports: [[80, 8080]] })), 'ports[0]', /ports\[0\] must be a JSON object, got \[80,8080\]/],
    ['protocol icmp', JSON.stringify(service({ ports: [{ protocol: 'icmp', port: 80, targetPort: 80 }] })), 'ports[0].protocol', /ports\[0\].protocol "icmp" is not tcp or udp or sctp/],
    ['protocol TCP', JSON.stringify(service({ ports: [{ protocol: 'TCP', port: 80, targetPort: 80 }] })), 'ports[0].protocol', /"TCP" is not tcp/],
    ['port a string', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: '80', targetPort: 80 }] })), 'ports[0].port', /ports\[0\].port must be a number, got "80"/],
    ['port 0', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 0, targetPort: 80 }] })), 'ports[0].port', /ports\[0\].port 0 is out of range \(1-65535\)/],
    ['port 65536', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 65536, targetPort: 80 }] })), 'ports[0].port', /65536 is out of range/],
    ['port 80.5', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 80.5, targetPort: 80 }] })), 'ports[0].port', /"80.5" is not a port number/],
    ['port -80', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: -80, targetPort: 80 }] })), 'ports[0].port', /"-80" is not a port number/],
    ['port 1e400 (Infinity)', '{"v":1,"name":"web","type":"ClusterIP","clusterIPs":["10.96.0.1"],"ports":[{"protocol":"tcp","port":1e400,"targetPort":80}],"selector":{},"sessionAffinity":"None","externalTrafficPolicy":"Cluster"}', 'ports[0].port', /"Infinity" is not a port number/],
    ['targetPort missing', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 80 }] })), 'ports[0].targetPort', /ports\[0\].targetPort must be a number, got nothing/],
    ['targetPort null', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 80, targetPort: null }] })), 'ports[0].targetPort', /must be a number, got null/],
    ['a port twice', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80 }, { protocol: 'tcp', port: 80, targetPort: 81 }] })), 'ports', /ports: port 80\/tcp is given twice/],
    ['nodePort on ClusterIP', JSON.stringify(service({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: 30080 }] })), 'ports[0].nodePort', /nodePort is set on a ClusterIP service/],
    ['nodePort missing on NodePort', JSON.stringify(nodePortService({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80 }] })), 'ports[0].nodePort', /ports\[0\].nodePort is missing/],
    ['nodePort 0', JSON.stringify(nodePortService({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: 0 }] })), 'ports[0].nodePort', /nodePort 0 is out of range/],
    ['nodePort 70000', JSON.stringify(nodePortService({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: 70000 }] })), 'ports[0].nodePort', /70000 is out of range/],
    ['nodePort a string', JSON.stringify(nodePortService({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: '30080' }] })), 'ports[0].nodePort', /must be a number/],
    ['nodePort twice', JSON.stringify(nodePortService({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: 30080 }, { protocol: 'tcp', port: 81, targetPort: 80, nodePort: 30080 }] })), 'ports[1].nodePort', /nodePort 30080\/tcp is given twice/],
    ['selector missing', JSON.stringify(service({ selector: undefined })), 'selector', /selector must be a JSON object, got nothing/],
    ['selector a string', JSON.stringify(service({ selector: 'app=web' })), 'selector', /selector must be a JSON object, got "app=web"/],
    ['selector an array', JSON.stringify(service({ selector: [['app', 'web']] })), 'selector', /selector must be a JSON object/],
    ['selector __proto__', '{"v":1,"name":"web","type":"ClusterIP","clusterIPs":["10.96.0.1"],"ports":[{"protocol":"tcp","port":80,"targetPort":80}],"selector":{"__proto__":{"polluted":"yes"}},"sessionAffinity":"None","externalTrafficPolicy":"Cluster"}', 'selector', /selector: "__proto__" is not a valid label key/],
    ['selector value a number', JSON.stringify(service({ selector: { app: 1 } })), 'selector', /selector.app: 1 is not a valid label value/],
    ['selector value an object', JSON.stringify(service({ selector: { app: { toString: 'web' } } })), 'selector', /selector.app: \{"toString":"web"\} is not a valid label value/],
    ['selector value too long', JSON.stringify(service({ selector: { app: 'x'.repeat(64) } })), 'selector', /is not a valid label value/],
    ['selector too big', JSON.stringify(service({ selector: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) })), 'selector', /selector has 65 pairs \(limit 64\)/],
    ['sessionAffinity missing', JSON.stringify(service({ sessionAffinity: undefined })), 'sessionAffinity', /sessionAffinity nothing is not None or ClientIP/],
    ['sessionAffinity clientip', JSON.stringify(service({ sessionAffinity: 'clientip' })), 'sessionAffinity', /is not None or ClientIP/],
    ['affinityTimeoutSeconds 0', JSON.stringify(service({ affinityTimeoutSeconds: 0 })), 'affinityTimeoutSeconds', /affinityTimeoutSeconds 0 must be an integer in 1..86400/],
    ['affinityTimeoutSeconds a day and a second', JSON.stringify(service({ affinityTimeoutSeconds: 86401 })), 'affinityTimeoutSeconds', /86401 must be an integer/],
    ['affinityTimeoutSeconds 1.5', JSON.stringify(service({ affinityTimeoutSeconds: 1.5 })), 'affinityTimeoutSeconds', /1.5 must be an integer/],
    ['affinityTimeoutSeconds "10"', JSON.stringify(service({ affinityTimeoutSeconds: '10' })), 'affinityTimeoutSeconds', /"10" must be an integer/],
    ['affinityTimeoutSeconds null', JSON.stringify(service({ affinityTimeoutSeconds: null })), 'affinityTimeoutSeconds', /null must be an integer/],
    ['externalTrafficPolicy Global', JSON.stringify(service({ externalTrafficPolicy: 'Global' })), 'externalTrafficPolicy', /externalTrafficPolicy "Global" is not Cluster or Local/]
  ]
  for (const [name, text, field, message] of cases) {
    const e = refusal(() => parseServiceValue(SKEY, 'web', text))
    t.ok(isServiceValueError(e), `${name}: a ServiceValueError`)
    if (!isServiceValueError(e)) continue
    t.equal(e.code, 'ESERVICEVALUE', name)
    t.equal(e.key, SKEY, `${name}: the key`)
    t.equal(e.field, field, `${name}: the field`)
    t.ok(e.message.startsWith(`${SKEY}: `), `${name}: the message names the key`)
    t.match(e.message, message, name)
    t.ok(e.message.length < 300, `${name}: a message of sane length`)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was polluted')
})

t.test('good pod values', async t => {
  t.strictSame(parsePodValue(PKEY, 'node-1', 'abc123', JSON.stringify(pod())), pod())
  t.strictSame(parsePodValue(PKEY, 'node-1', 'abc123', JSON.stringify(pod({ namespace: undefined, name: undefined, ips: ['fd00:10:244:1::5'], labels: {} }))),
    { v: 1, id: 'abc123', node: 'node-1', ifname: 'eth0', ips: ['fd00:10:244:1::5'], labels: {} }, 'no namespace/name (not from Kubernetes), IPv6 only')
  const noLabels = pod()
  delete noLabels.labels
  t.strictSame(parsePodValue(PKEY, 'node-1', 'abc123', JSON.stringify(noLabels)).labels, {}, 'no labels: none')
  const id = 'a'.repeat(64)
  t.equal(parsePodValue(`/p/pods/node-1/${id}`, 'node-1', id, JSON.stringify(pod({ id }))).id, id, 'a runtime\'s 64-hex-digit ID')
  t.strictSame(parsePodValue(PKEY, 'node-1', 'abc123', JSON.stringify(pod({ cni: { netns: '/proc/1/ns/net' } }))), pod(), 'unknown fields ignored')
})

t.test('hostile and broken pod values', async t => {
  const cases: Array<[string, string, string, RegExp]> = [
    ['not JSON', 'nope', '', /value is not JSON/],
    ['an array', JSON.stringify([pod()]), '', /must be a JSON object/],
    ['too large', JSON.stringify(pod({ pad: 'x'.repeat(MAX_POD_VALUE_BYTES) })), '', /bytes \(limit 16384\)/],
    ['version 0', JSON.stringify(pod({ v: 0 })), 'v', /unsupported value version 0/],
    ['another node', JSON.stringify(pod({ node: 'node-2' })), 'node', /node "node-2" does not match the key's "node-1"/],
    ['a node name no node can have', JSON.stringify(pod({ node: 'Node_1' })), 'node', /node "Node_1" is not a node name/],
    ['another id', JSON.stringify(pod({ id: 'def456' })), 'id', /id "def456" does not match the key's "abc123"/],
    ['an id with a slash', JSON.stringify(pod({ id: '../x' })), 'id', /id "..\/x" is not a container ID/],
    ['an id too long', JSON.stringify(pod({ id: 'a'.repeat(129) })), 'id', /is not a container ID/],
    ['id a number', JSON.stringify(pod({ id: 123 })), 'id', /id 123 is not a container ID/],
    ['ifname too long', JSON.stringify(pod({ ifname: 'eth0123456789012' })), 'ifname', /ifname "eth0123456789012" is not an interface name/],
    ['ifname with a slash', JSON.stringify(pod({ ifname: 'a/b' })), 'ifname', /is not an interface name/],
    ['ifname missing', JSON.stringify(pod({ ifname: undefined })), 'ifname', /ifname nothing is not an interface name/],
    ['ips missing', JSON.stringify(pod({ ips: undefined })), 'ips', /ips must be an array of 1-2 IP addresses, got nothing/],
    ['ips empty', JSON.stringify(pod({ ips: [] })), 'ips', /ips must be an array of 1-2/],
    ['ips a string', JSON.stringify(pod({ ips: '10.244.1.5' })), 'ips', /ips must be an array/],
    ['an ip with a prefix length', JSON.stringify(pod({ ips: ['10.244.1.5/24'] })), 'ips[0]', /ips\[0\] "10.244.1.5\/24" is not an IP address/],
    ['two IPv6', JSON.stringify(pod({ ips: ['fd00::5', 'fd00::6'] })), 'ips[1]', /a second IPv6 address/],
    ['a loopback ip', JSON.stringify(pod({ ips: ['127.0.0.1'] })), 'ips[0]', /127.0.0.1 is loopback/],
    ['a link-local ip', JSON.stringify(pod({ ips: ['fe80::1'] })), 'ips[0]', /fe80::1 is link-local/],
    ['an ip object', JSON.stringify(pod({ ips: [{ address: '10.244.1.5' }] })), 'ips[0]', /is not an IP address/],
    ['a huge ip string', JSON.stringify(pod({ ips: ['1'.repeat(100_00)] })), 'ips[0]', /ips\[0\] "1111.*\.\.\. is not an IP address/],
    ['namespace empty', JSON.stringify(pod({ namespace: '' })), 'namespace', /namespace "" must be 1-253 printable characters/],
    ['namespace a number', JSON.stringify(pod({ namespace: 1 })), 'namespace', /namespace 1 must be/],
    ['name too long', JSON.stringify(pod({ name: 'n'.repeat(254) })), 'name', /name "nnn.*must be 1-253/],
    ['name with an escape sequence', JSON.stringify(pod({ name: 'web\u001b[2J' })), 'name', /name "web\\u001b\[2J" must be 1-253 printable/],
    ['name with a space', JSON.stringify(pod({ name: 'web 1' })), 'name', /must be 1-253 printable characters without spaces/],
    ['labels an array', JSON.stringify(pod({ labels: [{ key: 'app', value: 'web' }] })), 'labels', /labels must be a JSON object/],
    ['labels null', JSON.stringify(pod({ labels: null })), 'labels', /labels must be a JSON object, got null/],
    ['ips nested deep', '{"v":1,"id":"abc123","node":"node-1","ifname":"eth0","ips":' + '['.repeat(7000) + ']'.repeat(7000) + '}', 'ips[0]', /ips\[0\] \[\[\[\.\.\.\]\]\] is not an IP address/],
    ['labels __proto__', '{"v":1,"id":"abc123","node":"node-1","ifname":"eth0","ips":["10.244.1.5"],"labels":{"__proto__":"x"}}', 'labels', /labels: "__proto__" is not a valid label key/],
    ['labels a bad key', JSON.stringify(pod({ labels: { 'app web': 'x' } })), 'labels', /labels: "app web" is not a valid label key/],
    ['labels a value true', JSON.stringify(pod({ labels: { app: true } })), 'labels', /labels.app: true is not a valid label value/],
    ['too many labels', JSON.stringify(pod({ labels: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) })), 'labels', /labels has 65 pairs/]
  ]
  for (const [name, text, field, message] of cases) {
    const e = refusal(() => parsePodValue(PKEY, 'node-1', 'abc123', text))
    t.ok(isServiceValueError(e), `${name}: a ServiceValueError`)
    if (!isServiceValueError(e)) continue
    t.equal(e.key, PKEY, `${name}: the key`)
    t.equal(e.field, field, `${name}: the field`)
    t.ok(e.message.startsWith(`${PKEY}: `), `${name}: the message names the key`)
    t.match(e.message, message, name)
    t.ok(e.message.length < 300, `${name}: a message of sane length`)
  }
})

t.test('the canonical text: stable field order, sorted maps, and it parses back', async t => {
  const spec: ServiceSpec = {
    v: 1,
    name: 'web',
    type: 'NodePort',
    clusterIPs: ['10.96.0.10'],
    ports: [{ targetPort: 8080, nodePort: 30080, port: 80, protocol: 'tcp' } as const],
    selector: { tier: 'front', app: 'web' },
    externalTrafficPolicy: 'Local',
    affinityTimeoutSeconds: 60,
    sessionAffinity: 'ClientIP'
  }
  const text = serviceValueText(spec)
  t.equal(text, '{"v":1,"name":"web","type":"NodePort","clusterIPs":["10.96.0.10"],"ports":[{"protocol":"tcp","port":80,"targetPort":8080,"nodePort":30080}],' +
    '"selector":{"app":"web","tier":"front"},"sessionAffinity":"ClientIP","affinityTimeoutSeconds":60,"externalTrafficPolicy":"Local"}')
  t.strictSame(parseServiceValue(SKEY, 'web', text), spec)
  t.equal(serviceValueText(parseServiceValue(SKEY, 'web', text)), text, 'the same text again')

  const rec: PodRecord = { labels: { tier: 'front', app: 'web' }, ips: ['10.244.1.5'], ifname: 'eth0', node: 'node-1', id: 'abc123', name: 'web-1', namespace: 'default', v: 1 }
  const ptext = podValueText(rec)
  t.equal(ptext, '{"v":1,"id":"abc123","node":"node-1","ifname":"eth0","ips":["10.244.1.5"],"namespace":"default","name":"web-1","labels":{"app":"web","tier":"front"}}')
  t.strictSame(parsePodValue(PKEY, 'node-1', 'abc123', ptext), rec)

  const bad = refusal(() => serviceValueText({ ...spec, ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }] }))
  t.ok(isServiceValueError(bad), 'a writer cannot store what readers refuse')
  t.match((bad as Error).message, /services\/web: ports\[0\].nodePort is missing/)
  t.ok(isServiceValueError(refusal(() => podValueText({ ...rec, ips: ['10.244.1.5', '10.244.1.6'] }))), 'nor a pod with two IPv4 addresses')
})

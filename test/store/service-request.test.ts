import t from 'tap'
import { type AddServiceRequest, checkServiceRequest } from '../../lib/store/service-request'
import { isServiceStoreError } from '../../lib/store/service-store-error'
import { formatServiceClaim, nodePodsPrefix, nodePortKey, parseServiceClaim, serviceIpKey, serviceKey } from '../../lib/store/service-keys'
import { isServiceName } from '../../lib/service/names'
import { parseServiceValue, serviceValueText } from '../../lib/service/service-value'

const web = (over: Partial<AddServiceRequest> = {}): AddServiceRequest => ({
  name: 'web', ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }], selector: { app: 'web' }, ...over
})

t.test('a request is normalised: defaults, sorted selector, canonical IPs by family', async t => {
  const c = checkServiceRequest(web({ selector: { tier: 'front', app: 'web' }, clusterIPs: ['fd00:96:0::a', '10.96.0.10'] }))
  t.equal(c.type, 'ClusterIP')
  t.equal(c.sessionAffinity, 'None')
  t.equal(c.externalTrafficPolicy, 'Cluster')
  t.strictSame(Object.keys(c.selector), ['app', 'tier'])
  t.strictSame([...c.clusterIPs].map(([f, ip]) => [f, ip.text]), [[6, 'fd00:96::a'], [4, '10.96.0.10']])
})

t.test('bad requests are refused as invalid, naming the fault', async t => {
  const cases: Array<[string, AddServiceRequest, RegExp]> = [
    ['name with upper case', web({ name: 'Web' }), /"Web" is not a valid service name \(a DNS label/],
    ['name starting with a digit', web({ name: '1web' }), /not a valid service name/],
    ['name too long', web({ name: 'a'.repeat(64) }), /not a valid service name/],
    ['no ports', web({ ports: [] }), /needs at least one --port/],
    ['port 0', web({ ports: [{ protocol: 'tcp', port: 0, targetPort: 80 }] }), /port 0 is out of range/],
    ['target port 70000', web({ ports: [{ protocol: 'tcp', port: 80, targetPort: 70000 }] }), /target port 70000 is out of range/],
    ['protocol icmp', web({ ports: [{ protocol: 'icmp' as 'tcp', port: 80, targetPort: 80 }] }), /protocol "icmp" is not tcp, udp or sctp/],
    ['the same port twice', web({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80 }, { protocol: 'tcp', port: 80, targetPort: 81 }] }), /port 80\/tcp is given twice/],
    ['node port on a ClusterIP service', web({ ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: 30080 }] }), /node port 30080 given for a ClusterIP service/],
    ['the same node port twice', web({ type: 'NodePort', ports: [{ protocol: 'tcp', port: 80, targetPort: 80, nodePort: 30080 }, { protocol: 'tcp', port: 81, targetPort: 80, nodePort: 30080 }] }), /node port 30080\/tcp is given twice/],
    ['Local on a ClusterIP service', web({ externalTrafficPolicy: 'Local' }), /Local applies to NodePort services only/],
    ['unknown type', web({ type: 'LoadBalancer' as 'NodePort' }), /type "LoadBalancer" is not ClusterIP or NodePort/],
    ['unknown affinity', web({ sessionAffinity: 'Cookie' as 'None' }), /session affinity "Cookie"/],
    ['timeout without ClientIP', web({ affinityTimeoutSeconds: 60 }), /needs session affinity ClientIP/],
    ['timeout too long', web({ sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 86401 }), /outside 1\.\.86400/],
    ['bad selector key', web({ selector: { 'a b': 'x' } }), /selector key "a b" is not a valid label key/],
    ['bad selector value', web({ selector: { app: 'a b' } }), /selector value "a b" of app/],
    ['cluster IP not an IP', web({ clusterIPs: ['10.96.0.300'] }), /cluster IP "10\.96\.0\.300" is not an IP address/],
    ['two IPv4 cluster IPs', web({ clusterIPs: ['10.96.0.1', '10.96.0.2'] }), /two IPv4 cluster IPs/],
    // The readers' limits (parseServiceValue), so that what addService writes they accept.
    ['65 selector pairs', web({ selector: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) }), /a selector of 65 pairs \(at most 64\)/],
    ['257 ports', web({ ports: Array.from({ length: 257 }, (_, i) => ({ protocol: 'tcp' as const, port: i + 1, targetPort: 80 })) }), /257 ports \(at most 256\)/]
  ]
  for (const [name, req, says] of cases) {
    let err: unknown
    try { checkServiceRequest(req) } catch (e) { err = e }
    t.ok(isServiceStoreError(err) && err.problem === 'invalid', `${name}: invalid`)
    t.match((err as Error | undefined)?.message, says, name)
  }
})

// The store writes serviceValueText and reads parseServiceValue (lib/service/service-value.ts,
// tested in full in test/service/service-value.test.ts); these are the cases the store's former
// stand-ins (formatServiceValue / readServiceValue) were tested with, kept against the real ones.
t.test('stored value: canonical bytes, and the read refuses what it cannot use', async t => {
  const spec = { v: 1 as const, name: 'web', type: 'NodePort' as const, clusterIPs: ['10.96.0.10'], ports: [{ nodePort: 30080, targetPort: 8080, port: 80, protocol: 'tcp' as const }], selector: { z: '1', a: '2' }, sessionAffinity: 'None' as const, externalTrafficPolicy: 'Cluster' as const }
  const text = serviceValueText(spec)
  t.equal(text, '{"v":1,"name":"web","type":"NodePort","clusterIPs":["10.96.0.10"],"ports":[{"protocol":"tcp","port":80,"targetPort":8080,"nodePort":30080}],"selector":{"a":"2","z":"1"},"sessionAffinity":"None","externalTrafficPolicy":"Cluster"}')
  t.strictSame(parseServiceValue('k', 'web', text), JSON.parse(text))
  const bad: Array<[string, RegExp]> = [
    ['nope', /not JSON/],
    ['[]', /must be a JSON object/],
    [text.replace('"v":1', '"v":2'), /unsupported value version 2/],
    [text.replace('"name":"web"', '"name":"db"'), /name "db" does not match the key's "web"/],
    [text.replace('["10.96.0.10"]', '"10.96.0.10"'), /clusterIPs must be an array/],
    [text.replace('"port":80', '"port":"80"'), /ports\[0\]\.port must be a number/]
  ]
  for (const [value, says] of bad) t.throws(() => parseServiceValue('k', 'web', value), { code: 'ESERVICEVALUE', key: 'k', message: says })
})

t.test('keys and claim values', async t => {
  const P = '/podmesh/x/'
  t.equal(serviceKey(P, 'web'), '/podmesh/x/services/web')
  t.equal(serviceIpKey(P, 'fd00:96::a'), '/podmesh/x/serviceips/fd00:96::a')
  t.equal(nodePortKey(P, 'udp', 30053), '/podmesh/x/nodeports/udp-30053')
  t.equal(nodePodsPrefix(P, 'node-a'), '/podmesh/x/pods/node-a/')
  t.equal(formatServiceClaim('web'), '{"v":1,"service":"web"}')
  t.equal(parseServiceClaim('{"v":1,"service":"web"}'), 'web')
  for (const v of ['{"v":2,"service":"web"}', '{"v":1,"service":"Web"}', '{"v":1,"service":"web","x":1}', 'x', '[]', 'null']) t.equal(parseServiceClaim(v), undefined, v)
  t.ok(isServiceName('a') && isServiceName('web-1') && !isServiceName('web-') && !isServiceName('w.b') && !isServiceName(''))
})

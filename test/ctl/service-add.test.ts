// service add's flags into a request, without etcd: what is wrong on its face is a ConfigError
// naming the flag (podmeshctl's usage error, exit 2).
import t from 'tap'
import { isConfigError } from '../../lib/config/config-error'
import { serviceAddRequest } from '../../lib/ctl/service-add'

t.test('flags become a request', async t => {
  t.strictSame(serviceAddRequest('web', { port: ['80:8080/tcp', '53/UDP'], selector: 'tier=front,app=web', type: 'nodeport', 'node-port': ['30080'], 'session-affinity': 'ClientIP', 'session-affinity-timeout': '60', 'external-traffic-policy': 'local', 'cluster-ip': ['10.96.0.10'] }), {
    name: 'web',
    type: 'NodePort',
    ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30080 }, { protocol: 'udp', port: 53, targetPort: 53 }],
    selector: { tier: 'front', app: 'web' },
    externalTrafficPolicy: 'Local',
    sessionAffinity: 'ClientIP',
    affinityTimeoutSeconds: 60,
    clusterIPs: ['10.96.0.10']
  })
  t.strictSame(serviceAddRequest('db', { port: ['5432'], selector: 'app=db' }), {
    name: 'db', type: 'ClusterIP', ports: [{ protocol: 'tcp', port: 5432, targetPort: 5432 }], selector: { app: 'db' }
  })
})

t.test('what is wrong on its face names the flag', async t => {
  const ok = { port: ['80'], selector: 'app=web' }
  const cases: Array<[string | undefined, Record<string, unknown>, string, RegExp]> = [
    [undefined, ok, 'service add', /usage: podmeshctl service add NAME/],
    ['Web', ok, 'service add', /"Web" is not a valid service name/],
    ['web', { selector: 'app=web' }, '--port', /at least one --port/],
    ['web', { ...ok, port: ['70000'] }, '--port', /port 70000 is out of range \(1-65535\)/],
    ['web', { ...ok, port: ['80/icmp'] }, '--port', /protocol "icmp" is not tcp, udp or sctp/],
    ['web', { ...ok, port: ['80', '80/tcp'] }, 'service add', /port 80\/tcp is given twice/],
    ['web', { port: ['80'] }, '--selector', /needs --selector/],
    ['web', { ...ok, selector: 'app' }, '--selector', /"app" is not key=value/],
    ['web', { ...ok, type: 'LoadBalancer' }, '--type', /"LoadBalancer" is not ClusterIP or NodePort/],
    ['web', { ...ok, 'node-port': ['30080'] }, '--node-port', /only NodePort services have node ports/],
    ['web', { ...ok, type: 'NodePort', 'node-port': ['30080', '30081'] }, '--node-port', /2 node ports for 1 port\(s\)/],
    ['web', { ...ok, type: 'NodePort', 'node-port': ['x'] }, '--node-port', /node port "x" is not a port number/],
    ['web', { ...ok, 'external-traffic-policy': 'Local' }, '--external-traffic-policy', /NodePort services only/],
    ['web', { ...ok, 'session-affinity': 'sticky' }, '--session-affinity', /"sticky" is not None or ClientIP/],
    ['web', { ...ok, 'session-affinity-timeout': '60' }, '--session-affinity-timeout', /needs --session-affinity ClientIP/],
    ['web', { ...ok, 'cluster-ip': ['10.96.0.300'] }, '--cluster-ip', /cluster IP "10\.96\.0\.300" is not an IP address/]
  ]
  for (const [name, values, field, says] of cases) {
    let err: unknown
    try { serviceAddRequest(name, values) } catch (e) { err = e }
    t.ok(isConfigError(err) && err.problem === 'flag', `${says.source}: a flag error`)
    t.equal((err as { field?: string } | undefined)?.field, field, says.source)
    t.match((err as Error | undefined)?.message, says)
  }
})

// `podmeshctl endpoints NAME` against a real etcd holding values put directly (as a service store
// and the nodes' podmeshd write them): the table and JSON of the selected pods, a hostile pod
// value skipped with one warning line, an unknown service one line and exit 1.
import t from 'tap'
import { podKey, serviceKey } from '../../lib/store/service-keys'
import { podValueText, serviceValueText } from '../../lib/service/service-value'
import type { PodRecord, ServiceSpec } from '../../lib/service/types'
import { startEtcd } from '../harness/etcd'
import { compileEntry } from '../harness/compile'
import { runCli } from '../harness/ctl'
import { testClient } from '../harness/store'

const P = '/podmesh/default/'
const web: ServiceSpec = {
  v: 1,
  name: 'web',
  type: 'NodePort',
  clusterIPs: ['10.96.0.10', 'fd00:96::a'],
  ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30080 }, { protocol: 'udp', port: 53, targetPort: 5353, nodePort: 30053 }],
  selector: { app: 'web' },
  sessionAffinity: 'None',
  externalTrafficPolicy: 'Cluster'
}
const pods: PodRecord[] = [
  { v: 1, id: 'b2', node: 'node-2', ifname: 'eth0', ips: ['10.244.2.5'], namespace: 'shop', name: 'web-7d9', labels: { app: 'web' } },
  { v: 1, id: 'a1', node: 'node-1', ifname: 'eth0', ips: ['10.244.1.3', 'fd00:10:244:1::3'], labels: { app: 'web', tier: 'front' } },
  { v: 1, id: 'a2', node: 'node-1', ifname: 'eth0', ips: ['10.244.1.4'], namespace: 'shop', name: 'db-0', labels: { app: 'db' } }
]

t.test('podmeshctl endpoints', async t => {
  const cli = await compileEntry(t, 'cmd/podmeshctl.ts')
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  const client = await testClient(t, etcd.endpoints)
  await client.put(serviceKey(P, 'web')).value(serviceValueText(web))
  await client.put(serviceKey(P, 'empty')).value(serviceValueText({ ...web, name: 'empty', selector: { app: 'none' } }))
  for (const p of pods) await client.put(podKey(P, p.node, p.id)).value(podValueText(p))
  // A hostile value that claims to be a web pod on node-1, with a second IPv4 address.
  const hostileKey = podKey(P, 'node-1', 'evil')
  await client.put(hostileKey).value(JSON.stringify({ v: 1, id: 'evil', node: 'node-1', ifname: 'eth0', ips: ['10.244.1.66', '10.244.1.67'], labels: { app: 'web' } }))

  const table = await runCli(cli, ['endpoints', 'web', ...E])
  t.equal(table.code, 0, table.stderr)
  t.equal(table.stdout, [
    'POD           NODE    IP                PORTS',
    'a1            node-1  10.244.1.3        8080/tcp,5353/udp',
    'a1            node-1  fd00:10:244:1::3  8080/tcp,5353/udp',
    'shop/web-7d9  node-2  10.244.2.5        8080/tcp,5353/udp',
    ''
  ].join('\n'), 'one row per address of each selected pod, namespace/name when known')
  t.equal(table.stderr, `podmeshctl: warning: skipped ${hostileKey}: ips[1] 10.244.1.67: a second IPv4 address (at most one per family)\n`, 'the hostile pod: one warning line')

  const json = await runCli(cli, ['endpoints', 'web', '-o', 'json', ...E])
  t.equal(json.code, 0, json.stderr)
  t.strictSame(JSON.parse(json.stdout), [
    { pod: 'a1', id: 'a1', node: 'node-1', ip: '10.244.1.3', ports: ['8080/tcp', '5353/udp'] },
    { pod: 'a1', id: 'a1', node: 'node-1', ip: 'fd00:10:244:1::3', ports: ['8080/tcp', '5353/udp'] },
    { pod: 'shop/web-7d9', id: 'b2', node: 'node-2', ip: '10.244.2.5', ports: ['8080/tcp', '5353/udp'] }
  ])
  t.match(json.stderr, /skipped .*evil/, 'the warning goes to stderr, never into the JSON')

  const none = await runCli(cli, ['endpoints', 'empty', '-o', 'json', ...E])
  t.equal(none.code, 0, none.stderr)
  t.strictSame(JSON.parse(none.stdout), [], 'a service no pod matches: no endpoints, not an error')

  const failures: Array<[string[], number, string]> = [
    [['endpoints', 'nosuch'], 1, 'podmeshctl: no service named "nosuch" in cluster "default"\n'],
    [['endpoints', 'web', '--cluster', 'other'], 1, 'podmeshctl: no service named "web" in cluster "other"\n'],
    [['endpoints', 'web', '--prefix', '/custom/podmesh/'], 1, 'podmeshctl: no service named "web" in prefix "/custom/podmesh/"\n'],
    [['endpoints', 'Bad/Name'], 1, 'podmeshctl: key "/podmesh/default/services/Bad/Name": "Bad/Name" is not a valid service name (a DNS label: lower-case letters, digits and \'-\', starting with a letter, ending alphanumeric, at most 63 characters)\n'],
    [['endpoints'], 2, 'podmeshctl: usage: podmeshctl endpoints <service>\n(see podmeshctl --help)\n'],
    [['endpoints', 'web', 'db'], 2, 'podmeshctl: usage: podmeshctl endpoints <service>\n(see podmeshctl --help)\n']
  ]
  for (const [args, code, stderr] of failures) {
    const r = await runCli(cli, [...args, ...E])
    t.equal(r.code, code, `exit ${code}: ${args.join(' ')}`)
    t.equal(r.stderr, stderr, `one line: ${args.join(' ')}`)
    t.equal(r.stdout, '', `nothing on stdout: ${args.join(' ')}`)
  }

  // A hostile service value: one line naming the key and the field, exit 1.
  await client.put(serviceKey(P, 'web')).value(JSON.stringify({ ...JSON.parse(serviceValueText(web)), selector: { app: ['web'] } }))
  const hostile = await runCli(cli, ['endpoints', 'web', ...E])
  t.equal(hostile.code, 1)
  t.equal(hostile.stderr, `podmeshctl: ${serviceKey(P, 'web')}: selector.app: ["web"] is not a valid label value\n`)

  const help = await runCli(cli, ['--help'])
  t.match(help.stdout, /^ {2}podmeshctl endpoints NAME {3}the pods behind a service/m, 'listed in the help')
})

// podmeshctl service add/list/show/remove as an operator runs them: the compiled CLI against a
// real etcd. Every refusal is one line with exit 2 (usage) or 1 (refused by the store), and
// leaves every key under the prefix as it was.
import t from 'tap'
import { compileEntry } from '../harness/compile'
import { type CliRun, runCli } from '../harness/ctl'
import { startEtcd } from '../harness/etcd'
import { dump, testClient } from '../harness/store'

let cli = ''
const ctl = async (args: string[]): Promise<CliRun> => await runCli(cli, args)

t.before(async () => {
  cli = await compileEntry(t, 'cmd/podmeshctl.ts')
})

t.test('service commands', async t => {
  const etcd = await startEtcd(t)
  const E = ['--etcd-endpoints', etcd.endpoint]
  const client = await testClient(t, etcd.endpoints)
  const prefix = '/podmesh/default/'

  const init = await ctl(['init', '--ipv4-cidr', '10.244.0.0/16', '--ipv6-cidr', 'fd00:10:244::/56', '--service-cidr', '10.96.0.0/28', '--service-cidr', 'fd00:10:96::/124', '--node-port-range', '30000-30009', ...E])
  t.equal(init.code, 0, init.stderr)
  const show = await ctl(['config', 'show', ...E])
  t.match(show.stdout, /^services\.nodePortRange\.min\s+30000$/m)
  t.match(show.stdout, /^services\.ipv4\s+10\.96\.0\.0\/28$/m)
  t.match(show.stdout, /^services\.ipv6\s+fd00:10:96::\/124$/m)

  const web = await ctl(['service', 'add', 'web', '--port', '80:8080/tcp', '--port', '53/udp', '--selector', 'app=web,tier=front', '--cluster-ip', '10.96.0.10', ...E, '-o', 'json'])
  t.equal(web.code, 0, web.stderr)
  const spec = JSON.parse(web.stdout) as { clusterIPs: string[], ports: unknown[], selector: unknown, type: string }
  t.equal(spec.type, 'ClusterIP')
  t.equal(spec.clusterIPs[0], '10.96.0.10')
  t.match(spec.clusterIPs[1], /^fd00:10:96::[0-9a-f]+$/)
  t.strictSame(spec.ports, [{ protocol: 'tcp', port: 80, targetPort: 8080 }, { protocol: 'udp', port: 53, targetPort: 53 }])
  t.strictSame(spec.selector, { app: 'web', tier: 'front' })

  const np = await ctl(['service', 'add', 'np', '--type', 'NodePort', '--port', '80:8080', '--port', '443:8443', '--node-port', '30005', '--selector', 'app=np', '--external-traffic-policy', 'Local', '--session-affinity', 'ClientIP', ...E])
  t.equal(np.code, 0, np.stderr)
  t.match(np.stdout, /^NAME\s+TYPE\s+CLUSTER-IPS\s+PORTS\s+SELECTOR\n/)
  t.match(np.stdout, /^np\s+NodePort\s+10\.96\.0\.\d+,fd00:10:96::[0-9a-f]+\s+80:8080\/tcp@30005,443:8443\/tcp@3000\d\s+app=np$/m)

  const none = ['--etcd-endpoints', etcd.endpoint]
  const cases: Array<{ name: string, args: string[], code: number, says: RegExp }> = [
    { name: 'port out of range', args: ['service', 'add', 'a', '--port', '70000', '--selector', 'app=a'], code: 2, says: /--port: port "70000": port 70000 is out of range \(1-65535\)/ },
    { name: 'target port out of range', args: ['service', 'add', 'a', '--port', '80:0', '--selector', 'app=a'], code: 2, says: /target port 0 is out of range/ },
    { name: 'protocol not tcp/udp/sctp', args: ['service', 'add', 'a', '--port', '80/icmp', '--selector', 'app=a'], code: 2, says: /protocol "icmp" is not tcp, udp or sctp/ },
    { name: 'selector that does not parse', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app'], code: 2, says: /--selector: selector "app": "app" is not key=value/ },
    { name: 'selector missing', args: ['service', 'add', 'a', '--port', '80'], code: 2, says: /needs --selector/ },
    { name: 'no port', args: ['service', 'add', 'a', '--selector', 'app=a'], code: 2, says: /at least one --port/ },
    { name: 'cluster IP not an IP', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app=a', '--cluster-ip', '10.96.0.300'], code: 2, says: /--cluster-ip: .*"10\.96\.0\.300" is not an IP address/ },
    { name: 'cluster IP outside the range', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app=a', '--cluster-ip', '10.97.0.1'], code: 1, says: /cluster IP 10\.97\.0\.1 is outside the service range 10\.96\.0\.0\/28/ },
    { name: 'cluster IP the network address', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app=a', '--cluster-ip', '10.96.0.0'], code: 1, says: /10\.96\.0\.0 is the network address of the service range/ },
    { name: 'cluster IP taken', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app=a', '--cluster-ip', '10.96.0.10'], code: 1, says: /cluster IP 10\.96\.0\.10 is taken by service "web"/ },
    { name: 'NodePort outside its range', args: ['service', 'add', 'a', '--type', 'NodePort', '--port', '80', '--selector', 'app=a', '--node-port', '30080'], code: 1, says: /node port 30080\/tcp is outside the NodePort range 30000-30009/ },
    { name: 'NodePort taken', args: ['service', 'add', 'a', '--type', 'NodePort', '--port', '80', '--selector', 'app=a', '--node-port', '30005'], code: 1, says: /node port 30005\/tcp is taken by service "np"/ },
    { name: 'NodePort not a number', args: ['service', 'add', 'a', '--type', 'NodePort', '--port', '80', '--selector', 'app=a', '--node-port', 'x'], code: 2, says: /--node-port: node port "x" is not a port number/ },
    { name: '--node-port on a ClusterIP service', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app=a', '--node-port', '30001'], code: 2, says: /--node-port: only NodePort services have node ports/ },
    { name: 'more node ports than ports', args: ['service', 'add', 'a', '--type', 'NodePort', '--port', '80', '--selector', 'app=a', '--node-port', '30001', '--node-port', '30002'], code: 2, says: /2 node ports for 1 port/ },
    { name: 'Local on a ClusterIP service', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app=a', '--external-traffic-policy', 'Local'], code: 2, says: /--external-traffic-policy: Local applies to NodePort services only/ },
    { name: 'unknown type', args: ['service', 'add', 'a', '--type', 'LoadBalancer', '--port', '80', '--selector', 'app=a'], code: 2, says: /--type: "LoadBalancer" is not ClusterIP or NodePort/ },
    { name: 'name not a DNS label', args: ['service', 'add', 'Web_1', '--port', '80', '--selector', 'app=a'], code: 2, says: /"Web_1" is not a valid service name \(a DNS label/ },
    { name: 'no name', args: ['service', 'add', '--port', '80', '--selector', 'app=a'], code: 2, says: /usage: podmeshctl service add NAME/ },
    { name: 'two names', args: ['service', 'add', 'a', 'b', '--port', '80', '--selector', 'app=a'], code: 2, says: /service add takes one name/ },
    { name: 'unknown flag', args: ['service', 'add', 'a', '--port', '80', '--selector', 'app=a', '--bogus'], code: 2, says: /Unknown option '--bogus'/ },
    { name: 'a service that exists', args: ['service', 'add', 'web', '--port', '80', '--selector', 'app=web'], code: 1, says: /service "web" already exists/ },
    { name: 'remove a service that does not exist', args: ['service', 'remove', 'nope'], code: 1, says: /^podmeshctl: no service named "nope" in cluster "default"\n$/ },
    { name: 'show a service that does not exist', args: ['service', 'show', 'nope'], code: 1, says: /^podmeshctl: no service named "nope" in cluster "default"\n$/ },
    { name: 'remove without a name', args: ['service', 'remove'], code: 2, says: /usage: podmeshctl service remove NAME/ }
  ]
  for (const c of cases) {
    const before = await dump(client, prefix)
    const r = await ctl([...c.args, ...none])
    t.equal(r.code, c.code, `${c.name}: exit ${c.code}`)
    t.match(r.stderr, c.says, c.name)
    t.match(r.stderr, /^podmeshctl: [^\n]+\n(\(see podmeshctl --help\)\n)?$/, `${c.name}: one line`)
    t.equal(r.stdout, '', `${c.name}: nothing on stdout`)
    t.strictSame(await dump(client, prefix), before, `${c.name}: etcd unchanged`)
  }

  const list = await ctl(['service', 'list', ...E])
  t.equal(list.code, 0, list.stderr)
  t.match(list.stdout, /^NAME\s+TYPE\s+CLUSTER-IPS\s+PORTS\s+SELECTOR\nnp\s.*\nweb\s+ClusterIP\s+10\.96\.0\.10,fd00:10:96::[0-9a-f]+\s+80:8080\/tcp,53:53\/udp\s+app=web,tier=front\n$/)
  const listJson = JSON.parse((await ctl(['service', 'list', '-o', 'json', ...E])).stdout) as { services: Array<{ name: string }>, skipped: unknown[] }
  t.strictSame(listJson.services.map(s => s.name), ['np', 'web'])
  t.strictSame(listJson.skipped, [])
  const one = await ctl(['service', 'show', 'np', ...E])
  t.equal(one.code, 0, one.stderr)
  t.match(one.stdout, /^externalTrafficPolicy\s+Local$/m)
  t.match(one.stdout, /^sessionAffinity\s+ClientIP$/m)
  t.match(one.stdout, /^ports\s+80:8080\/tcp@30005,443:8443\/tcp@3000\d$/m)

  const rm = await ctl(['service', 'remove', 'np', ...E, '-o', 'json'])
  t.equal(rm.code, 0, rm.stderr)
  const removed = JSON.parse(rm.stdout) as { service: boolean, claims: string[] }
  t.equal(removed.service, true)
  t.equal(removed.claims.length, 4, 'two cluster IPs and two node ports freed')
  const left = [...(await dump(client, prefix)).keys()].map(k => k.slice(prefix.length)).filter(k => k !== 'config')
  t.strictSame(left.sort(), [`serviceips/${spec.clusterIPs[0] ?? ''}`, `serviceips/${spec.clusterIPs[1] ?? ''}`, 'services/web'].sort(), 'only web\'s keys are left')

  // A stored service no reader accepts: list goes on and says which and why, once; show refuses it.
  await client.put(`${prefix}services/bad`).value('{"v":1,"name":"bad","type":"ClusterIP","clusterIPs":["10.96.0.3"],"ports":[{"protocol":"tcp","port":80,"targetPort":80,"nodePort":30001}],"selector":{},"sessionAffinity":"None","externalTrafficPolicy":"Cluster"}')
  const withBad = await ctl(['service', 'list', ...E])
  t.equal(withBad.code, 0, withBad.stderr)
  t.match(withBad.stdout, /\nweb\s[^\n]*\n!! skipped \/podmesh\/default\/services\/bad: ports\[0\]\.nodePort is set on a ClusterIP service \(only NodePort services have node ports\)\n$/)
  const badJson = JSON.parse((await ctl(['service', 'list', '-o', 'json', ...E])).stdout) as { services: Array<{ name: string }>, skipped: unknown[] }
  t.strictSame(badJson.services.map(s => s.name), ['web'])
  t.strictSame(badJson.skipped, [{ key: `${prefix}services/bad`, reason: 'ports[0].nodePort is set on a ClusterIP service (only NodePort services have node ports)' }])
  const showBad = await ctl(['service', 'show', 'bad', ...E])
  t.equal(showBad.code, 1)
  t.equal(showBad.stderr, `podmeshctl: ${prefix}services/bad: ports[0].nodePort is set on a ClusterIP service (only NodePort services have node ports)\n`)

  const help = await ctl(['--help'])
  for (const cmd of ['service add NAME', 'service list', 'service show NAME', 'service remove NAME', '--service-cidr CIDR', '--node-port-range']) t.match(help.stdout, cmd)
})

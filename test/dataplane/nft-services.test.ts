// podmesh's service table against the real kernel, in namespaces of its own: a "node" with a
// bridge and two "pods" running TCP and UDP echo servers that answer with their name and the
// source address they saw, and an "outside" client on the node's underlay address. ClusterIPs
// (v4 and v6) from the node and from a pod reach both endpoints with the pod source kept,
// hairpin is masqueraded, a service without endpoints is refused, an endpoint removed by a
// partial update (one spawn) gets no new connection, ClientIP affinity holds a client to one endpoint, NodePort masquerades under Cluster and keeps
// the client under Local, and another table in the namespace is never touched.
import t, { type Test } from 'tap'
import type { ServiceRuleset } from '../../lib/service/rules'
import { serviceRuleset } from '../../lib/service/ruleset'
import type { Endpoint, ServiceSpec } from '../../lib/service/types'
import { Lab, type Netns } from '../harness/netns'
import { type Answer, answerNames, answerSources, requests as echoRequests, startEchoServer } from '../harness/echo'

const AGENT = 'test/dataplane/nft-agent.ts'

const requests = async (ns: Netns, proto: 'tcp' | 'udp', host: string, port: number, count: number): Promise<Array<Answer | string>> => await echoRequests(ns.name, proto, host, port, count)
const startServer = async (t: Test, ns: Netns, name: string, port: number): Promise<unknown> => await startEchoServer(t, ns.name, name, port)
const names = answerNames
const sources = answerSources

t.test('service table in a node namespace: ClusterIP, hairpin, no endpoints, endpoint removal, NodePort, other tables', async t => {
  const lab = new Lab({ t })
  const node = await lab.netns('nd')
  const pods = [await lab.netns('pa'), await lab.netns('pb')]
  const outside = await lab.netns('ex')
  const [p1, p2] = pods as [Netns, Netns]

  // The node: forwarding; bridged pod traffic through the node's netfilter hooks, so that a
  // pod's reply to another pod on the bridge is un-DNATed (kube-proxy's br_netfilter requirement).
  for (const s of ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.bridge.bridge-nf-call-iptables=1', 'net.bridge.bridge-nf-call-ip6tables=1']) {
    await node.exec('sysctl', ['-qw', s])
  }
  const br = lab.ifname('br')
  await node.ip(['link', 'add', br, 'type', 'bridge'])
  await node.ip(['addr', 'add', '10.244.1.1/24', 'dev', br])
  await node.ip(['addr', 'add', 'fd00:244:1::1/64', 'dev', br, 'nodad'])
  await node.ip(['link', 'set', br, 'up'])
  // Service ranges go somewhere (a default route would do): packets to a VIP without endpoints
  // must be routed to reach the forward/output hooks that refuse them.
  // (A veth pair with nothing behind it: this kernel has no dummy device.)
  const svc = lab.ifname('sv')
  const svcPeer = lab.ifname('sv')
  await node.ip(['link', 'add', svc, 'type', 'veth', 'peer', 'name', svcPeer])
  await node.ip(['link', 'set', svcPeer, 'up'])
  await node.ip(['link', 'set', svc, 'up'])
  await node.ip(['route', 'add', '10.96.0.0/16', 'dev', svc])
  await node.ip(['-6', 'route', 'add', 'fd00:96::/112', 'dev', svc])
  const podIps = [['10.244.1.2', 'fd00:244:1::2'], ['10.244.1.3', 'fd00:244:1::3']] as const
  for (const [i, pod] of pods.entries()) {
    const [v4, v6] = podIps[i] as readonly [string, string]
    const [outer] = await lab.veth({ ns: node }, { ns: pod, addresses: [`${v4}/24`, `${v6}/64`] })
    await node.ip(['link', 'set', outer, 'master', br])
    // As the bridge CNI plugin does with podmesh's conflist (hairpinMode: true): with br_netfilter,
    // a pod's packet DNATed back to itself is bridged out of the port it came in on.
    await node.ip(['link', 'set', outer, 'type', 'bridge_slave', 'hairpin', 'on'])
    await pod.ip(['route', 'add', 'default', 'via', '10.244.1.1'])
    await pod.ip(['-6', 'route', 'add', 'default', 'via', 'fd00:244:1::1'])
  }
  await lab.veth({ ns: node, addresses: ['192.0.2.1/24'] }, { ns: outside, addresses: ['192.0.2.2/24'] })

  // Someone else's table in the same namespace: must come through every apply and the removal as it was.
  await node.exec('nft', ['-f', '-'], { input: 'table inet other {\n chain input { type filter hook input priority 0; counter accept; }\n}\n' })
  const otherTable = async (): Promise<string> => (await node.exec('nft', ['list', 'table', 'inet', 'other'])).stdout.replace(/packets \d+ bytes \d+/g, '')
  const otherBefore = await otherTable()

  await startServer(t, p1, 'pa', 8080)
  await startServer(t, p2, 'pb', 8080)
  t.ok(await p1.pings('10.244.1.3') && await p1.pings('fd00:244:1::3'), 'pods reach each other')

  const agent = node.spawnTs(AGENT)
  const base = { v: 1 as const, selector: { app: 'x' }, sessionAffinity: 'None' as const, externalTrafficPolicy: 'Cluster' as const }
  const web: ServiceSpec = { ...base, name: 'web', type: 'ClusterIP', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }, { protocol: 'udp', port: 53, targetPort: 8080 }] }
  const empty: ServiceSpec = { ...base, name: 'empty', type: 'ClusterIP', clusterIPs: ['10.96.0.11', 'fd00:96::11'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080 }] }
  const npCluster: ServiceSpec = { ...base, name: 'np-cluster', type: 'NodePort', clusterIPs: ['10.96.0.12'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30080 }] }
  const npLocal: ServiceSpec = { ...base, name: 'np-local', type: 'NodePort', externalTrafficPolicy: 'Local', clusterIPs: ['10.96.0.13'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30081 }] }
  const npRemote: ServiceSpec = { ...npLocal, name: 'np-remote', clusterIPs: ['10.96.0.14'], ports: [{ protocol: 'tcp', port: 80, targetPort: 8080, nodePort: 30082 }] }
  const sticky: ServiceSpec = { ...web, name: 'sticky', clusterIPs: ['10.96.0.15', 'fd00:96::15'], sessionAffinity: 'ClientIP', affinityTimeoutSeconds: 60 }
  const ep = (ip: string, pod: string, node = 'n1'): Endpoint => ({ ip, node, pod, local: node === 'n1' })
  const both = [ep('10.244.1.2', 'pa'), ep('10.244.1.3', 'pb'), ep('fd00:244:1::2', 'pa'), ep('fd00:244:1::3', 'pb')]
  const ruleset = (webEps: Endpoint[]): ServiceRuleset => serviceRuleset({
    services: [web, empty, npCluster, npLocal, npRemote, sticky],
    endpoints: new Map([['web', webEps], ['sticky', both], ['np-cluster', [ep('10.244.1.3', 'pb')]], ['np-local', [ep('10.244.1.3', 'pb')]], ['np-remote', [ep('10.244.1.3', 'pb', 'n2')]]]),
    node: 'n1',
    nodeAddresses: { 4: ['192.0.2.1'] }
  })

  const first = ruleset(both)
  t.strictSame(await agent.request('apply', { next: first }), { result: 'full', spawns: 1 }, 'full sync: one nft spawn')
  t.strictSame(await agent.request('apply', { next: first }), { result: 'full', spawns: 1 }, 'a second full sync over an existing table works')

  const N = 30
  await t.test('ClusterIP from the node, v4 and v6, TCP and UDP: every request answered, by both endpoints', async t => {
    for (const [proto, vip, port] of [['tcp', '10.96.0.10', 80], ['tcp', 'fd00:96::10', 80], ['udp', '10.96.0.10', 53], ['udp', 'fd00:96::10', 53]] as const) {
      const as = await requests(node, proto, vip, port, N)
      t.strictSame(names(as), ['pa', 'pb'], `${proto} ${vip}: only answers, from both pods`)
    }
  })

  await t.test('ClusterIP from a pod: the other pod sees the pod source; hairpin is masqueraded', async t => {
    for (const [vip, self, gateway] of [['10.96.0.10', '10.244.1.2', '10.244.1.1'], ['fd00:96::10', 'fd00:244:1::2', 'fd00:244:1::1']] as const) {
      const as = await requests(p1, 'tcp', vip, 80, N)
      t.strictSame(names(as), ['pa', 'pb'], `${vip}: only answers, from both pods (hairpin works)`)
      t.strictSame(sources(as, 'pb'), [self], `${vip}: pod to pod keeps the pod source`)
      t.strictSame(sources(as, 'pa'), [gateway], `${vip}: hairpin comes from the node`)
    }
    t.strictSame(names(await requests(p1, 'udp', '10.96.0.10', 53, N)), ['pa', 'pb'], 'UDP from a pod too')
  })

  await t.test('ClientIP affinity: each client stays on one endpoint, TCP and UDP, v4 and v6', async t => {
    for (const client of [node, p1, p2]) {
      for (const [proto, vip, port] of [['udp', '10.96.0.15', 53], ['tcp', '10.96.0.15', 80], ['udp', 'fd00:96::15', 53]] as const) {
        const got = names(await requests(client, proto, vip, port, 15))
        t.equal(got.length, 1, `${proto} ${vip} from ${client.name}: one endpoint (${got.join(', ')})`)
        t.notOk(got.some(n => n.startsWith('ERR:')), 'and answers')
      }
    }
  })

  await t.test('a service without endpoints is refused, not left to time out', async t => {
    for (const vip of ['10.96.0.11', 'fd00:96::11']) {
      t.strictSame(await requests(node, 'tcp', vip, 80, 2), ['ERR:ECONNREFUSED', 'ERR:ECONNREFUSED'], `${vip} from the node`)
      t.strictSame(await requests(p1, 'tcp', vip, 80, 2), ['ERR:ECONNREFUSED', 'ERR:ECONNREFUSED'], `${vip} from a pod`)
    }
  })

  await t.test('NodePort from outside: Cluster masquerades, Local keeps the client, Local without a local endpoint refuses', async t => {
    const cluster = await requests(outside, 'tcp', '192.0.2.1', 30080, 5)
    t.strictSame(names(cluster), ['pb'])
    t.strictSame(sources(cluster, 'pb'), ['10.244.1.1'], 'Cluster: source NAT to the node')
    const local = await requests(outside, 'tcp', '192.0.2.1', 30081, 5)
    t.strictSame(names(local), ['pb'])
    t.strictSame(sources(local, 'pb'), ['192.0.2.2'], 'Local: the client address preserved')
    t.strictSame(await requests(outside, 'tcp', '192.0.2.1', 30082, 2), ['ERR:ECONNREFUSED', 'ERR:ECONNREFUSED'], 'Local, endpoint on another node: refused here')
    t.strictSame(names(await requests(node, 'tcp', '10.96.0.14', 80, 3)), ['pb'], 'while its cluster IP works')
  })

  await t.test('an endpoint removed by a partial update gets no new connection', async t => {
    const second = ruleset(both.filter(e => e.pod !== 'pa'))
    t.strictSame(await agent.request('apply', { next: second, previous: first }), { result: 'partial', spawns: 1 }, 'partial update: one nft spawn')
    for (const [vip, port, proto] of [['10.96.0.10', 80, 'tcp'], ['fd00:96::10', 80, 'tcp'], ['10.96.0.10', 53, 'udp']] as const) {
      t.strictSame(names(await requests(p2, proto, vip, port, N)), ['pb'], `${proto} ${vip}: only the remaining endpoint`)
    }
    t.strictSame(await agent.request('apply', { next: second, previous: second }), { result: 'none', spawns: 0 }, 'no change: no spawn')
    t.strictSame(await agent.request('apply', { next: first, previous: second }), { result: 'partial', spawns: 1 }, 'the endpoint comes back')
    t.strictSame(names(await requests(node, 'tcp', '10.96.0.10', 80, N)), ['pa', 'pb'], 'and answers again')
  })

  await t.test('the table as JSON, then removal: only podmesh\'s table goes', async t => {
    const listed = await agent.request<Array<{ map?: { name: string, elem?: unknown[] } }>>('list')
    const clusterIps = listed.find(o => o.map?.name === 'cluster-ips-v4')
    t.equal(clusterIps?.map?.elem?.length, 7, 'cluster-ips-v4 holds web and sticky (tcp, udp), np-cluster, np-local, np-remote')
    t.equal(await otherTable(), otherBefore, 'table inet other untouched by the applies')
    t.strictSame(await agent.request('remove'), { result: null, spawns: 1 })
    t.equal(await agent.request('list'), null, 'table inet podmesh is gone')
    t.strictSame(await agent.request('remove'), { result: null, spawns: 1 }, 'removing an absent table is fine')
    t.equal(await otherTable(), otherBefore, 'table inet other untouched by the removal')
  })
  await agent.stop()
})

// Services across the netns lab (issue #11, acceptance 1–4): three nodes running podmeshd with
// service ranges, pods added through the conflist podmeshd wrote (so the podmesh CNI plugin
// reports them, labels and all), echo servers in the pods, services added with podmeshctl.
// ClusterIPs (v4 and v6, TCP and UDP) from every pod and every node host reach every endpoint;
// ClientIP affinity holds a client; a NodePort answers on every node's address from a client
// outside the cluster (behind a router namespace), Local keeping the client's address and
// refusing where there is no local endpoint; a pod deleted, then a node killed and its lease
// expired, get no new connection 2 s after etcd has the change.
import t from 'tap'
import { Lab, LabNode, type LabPod, SERVICE_CIDR4, SERVICE_CIDR6, nsExec, sh, sleep, waitFor } from './cluster'
import { type HeldConnection, answerNames, answerSources, holdConnection, requests, startEchoServer } from '../harness/echo'

const TARGET = 8080
const ROUTER_V4 = '192.0.2.254'
const OUTSIDE_V4 = '203.0.113.10'

interface Added { clusterIPs: string[], ports: Array<{ nodePort?: number }> }

t.test('services across nodes: ClusterIP, affinity, hairpin, NodePort, endpoints going away', { timeout: 600_000 }, async t => {
  const top = t
  const lab = await Lab.create({ nodes: 3, services: true, resyncInterval: '5s' })
  t.teardown(async () => await lab.destroy())
  const [n1, n2, n3] = lab.nodes as [LabNode, LabNode, LabNode]
  t.comment(`lab ${lab.id}; service ranges ${SERVICE_CIDR4}, ${SERVICE_CIDR6}`)

  // Pods: web endpoints a1 (node-1), a2 and a3 (node-2); clients c1 (node-1) and c3 (node-3).
  const web = { app: 'web' }
  const a1 = await n1.addPod(1, { labels: web })
  const c1 = await n1.addPod(2)
  const a2 = await n2.addPod(1, { labels: web })
  const a3 = await n2.addPod(2, { labels: web })
  const c3 = await n3.addPod(1)
  const serving = new Map<string, LabPod>([['a1', a1], ['a2', a2], ['a3', a3]])
  for (const [name, pod] of serving) await startEchoServer(t, pod.ns, name, TARGET)

  const add = async (...args: string[]): Promise<Added> => JSON.parse(await lab.ctl('service', 'add', ...args, '-o', 'json')) as Added
  const svc = await add('web', '--port', `80:${TARGET}/tcp`, '--port', `53:${TARGET}/udp`, '--selector', 'app=web')
  const sticky = await add('sticky', '--port', `53:${TARGET}/udp`, '--selector', 'app=web', '--session-affinity', 'ClientIP')
  const np = await add('web-np', '--type', 'NodePort', '--port', `80:${TARGET}`, '--node-port', '30080', '--selector', 'app=web')
  // The servers' held-connection port (TARGET + 1), for an established connection across endpoint changes.
  const long = await add('long', '--port', `81:${TARGET + 1}/tcp`, '--selector', 'app=web')
  const local = await add('web-local', '--type', 'NodePort', '--port', `80:${TARGET}`, '--node-port', '30081', '--selector', 'app=web', '--external-traffic-policy', 'Local')
  t.equal(svc.clusterIPs.length, 2, `web has a cluster IP per family: ${svc.clusterIPs.join(', ')}`)
  t.equal(np.ports[0]?.nodePort, 30080)
  t.equal(local.ports[0]?.nodePort, 30081)

  // Every node's rules hold the three endpoints once the pods are published.
  const endpointsOf = async (name: string): Promise<string> => await lab.ctl('endpoints', name)
  await waitFor('web to have 3 endpoints (6 addresses) in etcd', 30_000, async () => (await endpointsOf('web')).split('\n').filter(l => /10\.244\.|fd00:10:244:/.test(l)).length === 6)
  const [vip4, vip6] = svc.clusterIPs as [string, string]
  const sources = [...lab.nodes.flatMap(n => n.pods).map(p => ({ what: p.name, ns: p.ns })), ...lab.nodes.map(n => ({ what: `${n.name} host`, ns: n.ns }))]
  // The rules reach every node within a pass; the first answer from everywhere says they did.
  await waitFor('every source to reach the v4 cluster IP', 30_000, async () => {
    for (const s of sources) if ((await requests(s.ns, 'tcp', vip4, 80, 1, { timeoutMs: 1000 })).some(a => typeof a === 'string')) return false
    return true
  })

  await t.test('1. from every pod and every node host, 60 requests per cluster IP all succeed and every endpoint answers', async t => {
    for (const s of sources) {
      for (const vip of [vip4, vip6]) {
        const as = await requests(s.ns, 'tcp', vip, 80, 60)
        const failed = as.filter(a => typeof a === 'string')
        t.strictSame(failed, [], `${s.what} → ${vip}: every request answered`)
        t.strictSame(answerNames(as), ['a1', 'a2', 'a3'], `${s.what} → ${vip}: every endpoint answered`)
      }
    }
  })

  await t.test('2. UDP; ClientIP affinity keeps a client on one endpoint; hairpin; pod sources kept', async t => {
    for (const vip of [vip4, vip6]) {
      const udp = await requests(c1.ns, 'udp', vip, 53, 30)
      t.strictSame(answerNames(udp), ['a1', 'a2', 'a3'], `UDP ${vip}: every endpoint answers`)
      const from = c1.ips.find(ip => ip.includes(':') === vip.includes(':')) as string
      for (const name of ['a2', 'a3']) t.strictSame(answerSources(udp, name), [from], `UDP ${vip}: ${name} (another node) sees the pod's own address`)
    }
    for (const vip of sticky.clusterIPs) {
      for (const client of [c1, c3]) {
        const as = await requests(client.ns, 'udp', vip, 53, 20)
        t.equal(answerNames(as).length, 1, `ClientIP ${vip} from ${client.name}: one endpoint for all 20 (${answerNames(as).join(', ')})`)
      }
    }
    // a1 calling the service it backs: some calls come back to itself (hairpin), all are answered.
    const hairpin = await requests(a1.ns, 'tcp', vip4, 80, 30)
    t.strictSame(hairpin.filter(a => typeof a === 'string'), [], 'hairpin: every call answered')
    t.ok(answerNames(hairpin).includes('a1'), 'hairpin: a1 answered its own call')
  })

  let outside = ''
  await t.test('3. NodePort from outside the cluster on every node; Local keeps the client address and refuses without a local endpoint', async t => {
    outside = await outsideClient(lab)
    for (const n of lab.nodes) {
      const cluster = await requests(outside, 'tcp', n.underlayIp, 30080, 30)
      t.strictSame(cluster.filter(a => typeof a === 'string'), [], `Cluster policy on ${n.name}: every request answered`)
      t.strictSame(answerNames(cluster), ['a1', 'a2', 'a3'], `Cluster policy on ${n.name}: any endpoint, local or not`)
      for (const name of answerNames(cluster)) t.notSame(answerSources(cluster, name), [OUTSIDE_V4], `Cluster policy on ${n.name}: ${name} sees the node, not the client (source NAT)`)
    }
    const on1 = await requests(outside, 'tcp', n1.underlayIp, 30081, 10)
    t.strictSame(answerNames(on1), ['a1'], 'Local on node-1: only its own endpoint')
    t.strictSame(answerSources(on1, 'a1'), [OUTSIDE_V4], 'Local on node-1: the client address preserved')
    const on2 = await requests(outside, 'tcp', n2.underlayIp, 30081, 20)
    t.strictSame(answerNames(on2), ['a2', 'a3'], 'Local on node-2: its two endpoints')
    t.strictSame([...answerSources(on2, 'a2'), ...answerSources(on2, 'a3')], [OUTSIDE_V4, OUTSIDE_V4], 'Local on node-2: the client address preserved')
    t.strictSame(await requests(outside, 'tcp', n3.underlayIp, 30081, 2), ['ERR:ECONNREFUSED', 'ERR:ECONNREFUSED'], 'Local on node-3 (no endpoint there): refused')
  })

  await t.test('6. a hostPort from the conflist (portmap, before podmesh\'s plugin) answers on the node', async t => {
    const h1 = await n1.addPod(3, { portMappings: [{ hostPort: 31080, containerPort: TARGET, protocol: 'tcp' }] })
    await startEchoServer(top, h1.ns, 'h1', TARGET)
    const as = await requests(outside, 'tcp', n1.underlayIp, 31080, 5)
    t.strictSame(answerNames(as), ['h1'], 'node-1:31080 answered by the pod behind the hostPort')
  })

  await t.test('podmeshctl diff and status cover the service table: in sync, an element deleted by hand named, counts per node', async t => {
    const diff = async (n: LabNode): Promise<{ code: number, out: string }> => {
      const r = await n.ctlRun('diff', n.name, '--wg-interface', n.wgIf, '--vxlan-interface', `${n.wgIf}x`)
      return { code: r.code, out: r.stdout + r.stderr }
    }
    for (const n of lab.nodes) {
      const d = await diff(n)
      t.equal(d.code, 0, `${n.name}: diff exits 0 (${d.out.trim()})`)
    }
    await nsExec(n1.ns, ['nft', 'delete', 'element', 'inet', 'podmesh', 'cluster-ips-v4', `{ ${vip4} . tcp . 80 }`])
    const d = await diff(n1)
    t.not(d.code, 0, 'node-1: diff exits non-zero')
    const line = new RegExp(`service map cluster-ips-v4: ${vip4.replace(/\./g, '\\.')} \\. tcp \\. 80 → (\\S+) missing`).exec(d.out)
    t.ok(line, `node-1: the missing element named: ${d.out.trim()}`)
    // Put it back as podmeshd had it (a full sync would, within the hour).
    await nsExec(n1.ns, ['nft', 'add', 'element', 'inet', 'podmesh', 'cluster-ips-v4', `{ ${vip4} . tcp . 80 : goto ${line?.[1] ?? ''} }`])
    t.equal((await diff(n1)).code, 0, 'node-1: in sync again')
    // Each node's status says what its rules hold (5 services; 3 pods × 2 addresses behind each).
    await waitFor('podmeshctl status to show every node\'s service rules', 20_000, async () => {
      const status = await lab.ctl('status')
      return lab.nodes.every(n => new RegExp(`^${n.name}: service rules: 5 services, 30 endpoints, in sync with etcd at \\S+$`, 'm').test(status))
    })
    t.pass('podmeshctl status: every node has 5 services, 30 endpoints, in sync')
  })

  await t.test('hostile values in etcd are skipped and logged; the rest goes on', async t => {
    const put = async (key: string, value: string): Promise<void> => { await lab.etcdctl('put', `/podmesh/default/${key}`, value) }
    await put('services/evil', '{"v":1,"name":"evil","ports":"all"}')
    const pod = (node: string, id: string, ip: string): string => JSON.stringify({ v: 1, id, node, ifname: 'eth0', ips: [ip], labels: { app: 'web' } })
    // A pod record naming an underlay address, and one of a node that has no record.
    await put('pods/node-1/forged', pod('node-1', 'forged', '192.0.2.1'))
    await put('pods/ghost/forged', pod('ghost', 'forged', '10.244.77.5'))
    const logged = (key: string, why: RegExp) => async (): Promise<boolean> =>
      lab.nodes.every(n => n.logTail(400).split('\n').some(l => l.includes('etcd value skipped for services') && l.includes(key) && why.test(l)))
    await waitFor('every node to log the bad service', 20_000, logged('/podmesh/default/services/evil', /evil/))
    await waitFor('every node to log the forged pod', 20_000, logged('/podmesh/default/pods/node-1/forged', /192\.0\.2\.1 is outside node node-1's pod subnets/))
    await waitFor('every node to log the pod of a node without a record', 20_000, logged('/podmesh/default/pods/ghost/forged', /node ghost has no record/))
    t.pass('each node logged each bad value with its key and why')
    const as = await requests(c1.ns, 'tcp', vip4, 80, 30, { timeoutMs: 2000 })
    t.strictSame(as.filter(a => typeof a === 'string'), [], 'web still answers every request')
    t.strictSame(answerNames(as), ['a1', 'a2', 'a3'], 'from its real endpoints only')
    await lab.etcdctl('del', '/podmesh/default/services/evil')
    await lab.etcdctl('del', '/podmesh/default/pods/ghost/forged')
    await lab.etcdctl('del', '/podmesh/default/pods/node-1/forged')
  })

  await t.test('a pod added while podmeshd is down is published when it is back', async t => {
    await n2.stop()
    const a4 = await n2.addPod(3, { labels: web })
    t.equal(a4.ips.length, 2, 'the CNI ADD succeeded without the daemon (the plugin only writes the spool)')
    // Serves until the lab goes (the subtest's teardown would end it with the subtest).
    await startEchoServer(top, a4.ns, 'a4', TARGET)
    await n2.start()
    await waitFor('a4 to answer through the cluster IP', 30_000, async () => answerNames(await requests(c1.ns, 'tcp', vip4, 80, 20, { timeoutMs: 1000 })).includes('a4'))
    t.pass('a4 answers once node-2\'s podmeshd is back')
  })

  await t.test('4. a pod deleted, then a node killed with its lease expired: no new connection to them 2 s after etcd has it', async t => {
    // A web pod on node-3, whose daemon runs with a short lease so that its death shows soon.
    await n3.stop()
    await n3.start(['--lease-ttl', '5s'])
    const b1 = await n3.addPod(2, { labels: web })
    await startEchoServer(t, b1.ns, 'b1', TARGET)
    await waitFor('b1 to answer through the cluster IP', 30_000, async () => answerNames(await requests(c1.ns, 'tcp', vip4, 80, 20, { timeoutMs: 1000 })).includes('b1'))

    const podKeys = async (node: string): Promise<string[]> =>
      (await lab.etcdctl('get', '--prefix', '--keys-only', `/podmesh/default/pods/${node}/`)).split('\n').filter(l => l !== '')
    const gone = async (what: string, node: string, check: (keys: string[]) => boolean): Promise<void> => {
      await waitFor(`${what} gone from etcd`, 60_000, async () => check(await podKeys(node)))
      const at = Date.now()
      await sleep(2000)
      t.comment(`${what}: gone from etcd; asking 2 s later (${Date.now() - at} ms)`)
    }

    // An established connection to an endpoint that stays (not a3) must survive the change.
    let held: HeldConnection | undefined
    let first = ''
    for (let i = 0; i < 20 && held === undefined; i++) {
      const c = await holdConnection(t, c1.ns, long.clusterIPs[0] as string, 81)
      first = await c.ask('hello')
      if (/^a[124] hello$/.test(first) || /^b1 hello$/.test(first)) held = c
    }
    t.ok(held !== undefined, `a held connection to an endpoint other than a3: ${first}`)

    const before = (await podKeys('node-2')).length
    await n2.delPod(a3)
    await gone('a3 (CNI DEL)', 'node-2', keys => keys.length === before - 1)
    for (const vip of [vip4, vip6]) {
      const as = await requests(c1.ns, 'tcp', vip, 80, 40, { timeoutMs: 2000 })
      t.strictSame(as.filter(a => typeof a === 'string'), [], `after a3's DEL, ${vip}: every request answered`)
      t.notOk(answerNames(as).includes('a3'), `after a3's DEL, ${vip}: a3 gets none (${answerNames(as).join(', ')})`)
    }
    const endpoint = first.split(' ')[0] ?? ''
    t.equal(await held?.ask('again'), `${endpoint} again`, `the established connection to ${endpoint} still answers after the endpoint set changed`)

    const pid = n3.daemon?.pid
    t.ok(pid !== undefined, 'node-3 runs podmeshd')
    await sh('kill', ['-9', String(pid)])
    await gone("node-3's pods (daemon killed, lease expired)", 'node-3', keys => keys.length === 0)
    for (const vip of [vip4, vip6]) {
      const as = await requests(c1.ns, 'tcp', vip, 80, 40, { timeoutMs: 2000 })
      t.strictSame(as.filter(a => typeof a === 'string'), [], `after node-3's death, ${vip}: every request answered`)
      t.notOk(answerNames(as).includes('b1'), `after node-3's death, ${vip}: b1 gets none (${answerNames(as).join(', ')})`)
    }
  })

  await t.test('--leave removes the table', async t => {
    const tables = async (n: LabNode): Promise<string> => await nsExec(n.ns, ['nft', 'list', 'tables'])
    t.match(await tables(n1), /table inet podmesh/, 'node-1 has the table')
    await n1.stop()
    await n1.start(['--leave'])
    await n1.stop()
    t.notMatch(await tables(n1), /table inet podmesh/, 'gone after --leave')
  })
})

/** A namespace outside the cluster (203.0.113.10) behind a router on the underlay (192.0.2.254); every node routes back through it. */
async function outsideClient (lab: Lab): Promise<string> {
  const router = `${lab.id}rt`
  const outside = `${lab.id}ex`
  for (const ns of [router, outside]) {
    await sh('ip', ['netns', 'add', ns])
    lab.namespaces.push(ns)
    await nsExec(ns, ['ip', 'link', 'set', 'lo', 'up'])
  }
  await nsExec(lab.hub, ['ip', 'link', 'add', 'rt0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', router])
  await nsExec(lab.hub, ['ip', 'link', 'set', 'rt0', 'master', 'br0', 'up'])
  await nsExec(router, ['ip', 'addr', 'add', `${ROUTER_V4}/24`, 'dev', 'eth0'])
  await nsExec(router, ['ip', 'link', 'set', 'eth0', 'up'])
  await nsExec(router, ['ip', 'link', 'add', 'ex0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside])
  await nsExec(router, ['ip', 'addr', 'add', '203.0.113.1/24', 'dev', 'ex0'])
  await nsExec(router, ['ip', 'link', 'set', 'ex0', 'up'])
  await nsExec(router, ['sysctl', '-qw', 'net.ipv4.ip_forward=1'])
  await nsExec(outside, ['ip', 'addr', 'add', `${OUTSIDE_V4}/24`, 'dev', 'eth0'])
  await nsExec(outside, ['ip', 'link', 'set', 'eth0', 'up'])
  await nsExec(outside, ['ip', 'route', 'add', 'default', 'via', '203.0.113.1'])
  for (const n of lab.nodes) await nsExec(n.ns, ['ip', 'route', 'replace', '203.0.113.0/24', 'via', ROUTER_V4])
  return outside
}


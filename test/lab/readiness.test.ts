// /readyz follows the data plane: 503 until the first apply, 503 while applies fail, 200 when
// the kernel matches etcd again. (Degraded-but-serving during an etcd outage: operate.test.ts.)
import t from 'tap'
import { Lab, nsExec, sleep, type LabNode } from './cluster'

t.setTimeout(5 * 60_000)
let lab: Lab
t.before(async () => { lab = await Lab.create({ nodes: 2, podsPerNode: 0, backend: 'wireguard' }) })
t.teardown(async () => { await lab?.destroy() })

const readyz = async (n: LabNode): Promise<{ code: string, body: string }> => {
  const out = await nsExec(n.ns, ['curl', '-s', '-m', '2', '-w', '\n%{http_code}', `${n.metricsUrl}/readyz`], { allowFail: true })
  const lines = out.trim().split('\n')
  return { code: lines.pop() ?? '', body: lines.join('\n') }
}

async function waitReadyz (n: LabNode, code: string, timeoutMs: number): Promise<{ code: string, body: string }> {
  const deadline = Date.now() + timeoutMs
  let last = { code: '', body: '' }
  while (Date.now() < deadline) {
    last = await readyz(n)
    if (last.code === code) return last
    await sleep(100)
  }
  throw new Error(`readyz of ${n.name} never answered ${code}; last ${last.code} ${last.body}`)
}

t.test('not ready before the first apply (etcd unreachable at start), ready once applied', async t => {
  await lab.stopEtcd()
  const n3 = await lab.addNode(3)
  const starting = n3.start([], 60_000)
  const r = await waitReadyz(n3, '503', 15_000)
  t.match(r.body, /not ready: no subnet lease yet/)
  await lab.startEtcd()
  await starting
  t.equal((await waitReadyz(n3, '200', 15_000)).code, '200')
})

t.test('not ready while applies fail, ready again when the kernel can be made to match', async t => {
  const [a, b] = lab.nodes as [LabNode, LabNode]
  const bCidr = (JSON.parse((await lab.etcdctl('get', '--print-value-only', `/podmesh/default/nodes/${b.name}`)).trim()) as { podCIDRs: string[] }).podCIDRs[0]!
  // Someone else's route to b's pod subnet: podmesh must not overwrite it, so its apply fails.
  await nsExec(a.ns, ['ip', 'route', 'del', bCidr])
  await nsExec(a.ns, ['ip', 'route', 'add', bCidr, 'via', '192.0.2.1'])
  const r = await waitReadyz(a, '503', 10_000)
  t.match(r.body, /reconcile\(s\) failed/)
  t.match(await a.routes(), new RegExp(`${bCidr.replace(/\./g, '\\.')} via 192\\.0\\.2\\.1`), 'the foreign route was left alone')
  await nsExec(a.ns, ['ip', 'route', 'del', bCidr, 'via', '192.0.2.1'])
  t.equal((await waitReadyz(a, '200', 15_000)).code, '200')
  t.match(await a.routes(), new RegExp(`${bCidr.replace(/\./g, '\\.')} dev ${a.wgIf} proto 211`), 'podmesh route back')
})

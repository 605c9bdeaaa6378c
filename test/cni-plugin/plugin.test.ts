// The podmesh CNI plugin run as a runtime runs it, after Debian's real reference plugins: bridge
// + host-local give a "pod" namespace its interface and an IPv4 and IPv6 address (plugins run in
// a "node" namespace), then our plugin gets the bridge's result as prevResult. Checks the report
// in the spool, our stdout, DEL (twice), CHECK, and the error code of each refusal; then the whole
// chain through the lab's CNI runtime.
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Lab } from '../harness/netns'
import { compileEntry } from '../harness/compile'
import { tempDir } from '../harness/store'
import { cniAdd, cniDel, type CniResult } from '../lab/cni-runtime'

interface Ran { code: number | null, stdout: string, stderr: string }

/** One plugin invocation: env + stdin, inside the node namespace, as a runtime does it. */
async function invoke (plugin: string, nodeNs: string, env: Record<string, string>, stdin: string): Promise<Ran> {
  return await new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', nodeNs, plugin], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''; let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', reject)
    child.on('close', code => resolve({ code, stdout, stderr }))
    child.stdin.on('error', () => {})
    child.stdin.end(stdin)
  })
}

t.test('podmesh CNI plugin after bridge + host-local', async t => {
  const lab = new Lab({ t, prefix: 'pc' })
  const node = await lab.netns('n')
  const pod = await lab.netns('p')
  const pod2 = await lab.netns('q')
  const work = await tempDir(t, 'cni')
  const podDir = join(work, 'pods')
  const pluginDir = join(work, 'bin')
  const compiled = await compileEntry(t, 'cmd/podmesh-cni.ts')
  // The package links /usr/lib/cni/podmesh to the compiled entry; here a wrapper names this node.
  mkdirSync(pluginDir)
  writeFileSync(join(pluginDir, 'podmesh'), `#!/bin/sh\nexec ${process.execPath} ${compiled} "$@"\n`)
  chmodSync(join(pluginDir, 'podmesh'), 0o755)
  const plugin = join(pluginDir, 'podmesh')

  const bridgeConf = {
    type: 'bridge',
    bridge: lab.ifname('br'),
    isGateway: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.77.0.0/24' }], [{ subnet: 'fd00:77::/64' }]], dataDir: join(work, 'ipam') }
  }
  const bridgeOnly = { cniVersion: '1.0.0', name: 'pmtest', plugins: [bridgeConf] }
  const pluginDirs = [pluginDir, '/usr/lib/cni']
  const prev: CniResult = await cniAdd({ conflist: bridgeOnly, containerId: 'pod1', netns: pod.name, hostNetns: node.name, pluginDirs })
  t.teardown(async () => { await cniDel({ conflist: bridgeOnly, containerId: 'pod1', netns: pod.name, hostNetns: node.name, pluginDirs, prevResult: prev }).catch(() => {}) })

  const podAddrs = (prev.ips ?? []).filter(ip => prev.interfaces?.[ip.interface ?? -1]?.sandbox !== undefined).map(ip => ip.address.split('/')[0])
  t.equal(podAddrs.length, 2, 'the bridge gave the pod an IPv4 and an IPv6 address (the test can tell them from the bridge\'s)')

  const env = (command: string, extra: Record<string, string> = {}): Record<string, string> => ({
    CNI_COMMAND: command, CNI_CONTAINERID: 'pod1', CNI_NETNS: `/var/run/netns/${pod.name}`, CNI_IFNAME: 'eth0', CNI_PATH: pluginDirs.join(':'),
    CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-7d4b9;K8S_POD_INFRA_CONTAINER_ID=pod1', ...extra
  })
  const labels = [{ key: 'app', value: 'web' }, { key: 'example.com/tier', value: 'front' }]
  const stdin = (extra: Record<string, unknown> = {}): string => JSON.stringify({ cniVersion: '1.0.0', name: 'pmtest', type: 'podmesh', podDir, args: { cni: { labels } }, prevResult: prev, ...extra })

  const add = await invoke(plugin, node.name, env('ADD'), stdin())
  t.equal(add.code, 0, add.stdout + add.stderr)
  t.strictSame(JSON.parse(add.stdout), prev, 'our stdout is the prevResult, unchanged')
  const file = join(podDir, 'pod1.json')
  t.strictSame(JSON.parse(readFileSync(file, 'utf8')), {
    v: 1, id: 'pod1', ifname: 'eth0', ips: podAddrs, namespace: 'shop', name: 'web-7d4b9',
    labels: { app: 'web', 'example.com/tier': 'front' }, netns: `/var/run/netns/${pod.name}`
  }, 'the report: the pod\'s IPv4 and IPv6, namespace/name from CNI_ARGS, labels from args.cni.labels')
  t.match(podAddrs, [/^10\.77\.0\.\d+$/, /^fd00:77::/])
  const inPod = await pod.ipJson<Array<{ addr_info: Array<{ local: string }> }>>(['addr', 'show', 'dev', 'eth0'])
  t.ok(podAddrs.every(a => inPod[0]?.addr_info.some(i => i.local === a)), 'the reported addresses are the pod\'s eth0 addresses')

  const check = await invoke(plugin, node.name, env('CHECK'), stdin())
  t.strictSame({ code: check.code, stdout: check.stdout }, { code: 0, stdout: '' }, 'CHECK passes')

  t.equal((await invoke(plugin, node.name, env('DEL'), stdin())).code, 0, 'DEL')
  t.notOk(existsSync(file), 'DEL removed the report')
  const del2 = await invoke(plugin, node.name, env('DEL', { CNI_NETNS: '' }), stdin({ prevResult: undefined }))
  t.strictSame({ code: del2.code, stdout: del2.stdout }, { code: 0, stdout: '' }, 'DEL twice (netns gone, no prevResult) is fine')

  t.equal((await invoke(plugin, node.name, env('ADD'), stdin())).code, 0, 'ADD again')
  unlinkSync(file)
  const gone = await invoke(plugin, node.name, env('CHECK'), stdin())
  t.equal(gone.code, 1, 'CHECK fails once the report was removed by hand')
  t.match(JSON.parse(gone.stdout), { cniVersion: '1.0.0', code: 100, msg: /no report for container pod1/ })

  const refusals: Array<[string, Record<string, string>, string, Record<string, unknown>]> = [
    ['a bad label', env('ADD'), stdin({ args: { cni: { labels: [{ key: 'app', value: 'not ok' }] } } }), { code: 7, msg: /label app: "not ok" is not a valid label value/ }],
    ['a missing prevResult', env('ADD'), stdin({ prevResult: undefined }), { code: 7, msg: /prevResult is missing/ }],
    ['a bad container ID', env('ADD', { CNI_CONTAINERID: '../../etc/passwd' }), stdin(), { code: 4, msg: /CNI_CONTAINERID/ }],
    ['an unknown command', env('BOGUS'), stdin(), { code: 4, msg: /CNI_COMMAND/ }]
  ]
  for (const [name, e, input, want] of refusals) {
    const r = await invoke(plugin, node.name, e, input)
    t.equal(r.code, 1, `${name}: exit 1`)
    t.match(JSON.parse(r.stdout || '{}'), { cniVersion: '1.0.0', ...want }, `${name}: the CNI error`)
  }
  t.strictSame(readdirSync(podDir), [], 'no refusal wrote a report')

  const version = await invoke(plugin, node.name, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}')
  const bridgeVersion = await invoke('/usr/lib/cni/bridge', node.name, { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}')
  t.strictSame(JSON.parse(version.stdout).supportedVersions, JSON.parse(bridgeVersion.stdout).supportedVersions, 'the versions the reference bridge speaks')

  // The whole chain through the lab's runtime: the final result is the bridge's, the report is written.
  const chain = { cniVersion: '1.0.0', name: 'pmchain', plugins: [{ ...bridgeConf, ipam: { ...bridgeConf.ipam, dataDir: join(work, 'ipam2') } }, { type: 'podmesh', podDir }] }
  const result = await cniAdd({ conflist: chain, containerId: 'pod2', netns: pod2.name, hostNetns: node.name, pluginDirs })
  t.teardown(async () => { await cniDel({ conflist: chain, containerId: 'pod2', netns: pod2.name, hostNetns: node.name, pluginDirs, prevResult: result }).catch(() => {}) })
  t.match(JSON.parse(readFileSync(join(podDir, 'pod2.json'), 'utf8')), { id: 'pod2', ips: [/^10\.77\.0\./, /^fd00:77::/], labels: {} }, 'the chain reported pod2')
  await cniDel({ conflist: chain, containerId: 'pod2', netns: pod2.name, hostNetns: node.name, pluginDirs, prevResult: result })
  t.notOk(existsSync(join(podDir, 'pod2.json')), 'the chain\'s DEL withdrew it')
})

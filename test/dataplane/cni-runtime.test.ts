// The lab's CNI runtime (test/lab/cni-runtime.ts) keeps the CNI spec's contract: the real bridge
// plugin first, then a recording plugin (a real executable on CNI_PATH that logs what it was
// given) shows the order, the injected config, prevResult, runtimeConfig and the environment.
import t, { type Test } from 'tap'
import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { cniAdd, cniDel, isCniPluginError, isCniRuntimeError } from '../lab/cni-runtime'
import { addNetns, runTag } from './cni-netns'

interface Record { tag: string, command: string, env: { [k: string]: string }, conf: { [k: string]: unknown } }

const RECORDER = `#!${process.execPath}
const fs = require('fs')
const conf = JSON.parse(fs.readFileSync(0, 'utf8'))
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('CNI_')))
fs.appendFileSync(conf.log, JSON.stringify({ tag: conf.tag, command: env.CNI_COMMAND, env, conf }) + '\\n')
if (conf.fail) {
  process.stdout.write(JSON.stringify({ cniVersion: conf.cniVersion, code: 7, msg: 'told to fail', details: 'tag ' + conf.tag }))
  process.stderr.write('recorder stderr line')
  process.exit(1)
}
// Marks its result, so the next plugin's prevResult shows whose result it got.
if (env.CNI_COMMAND === 'ADD') process.stdout.write(JSON.stringify({ ...conf.prevResult, dns: { domain: conf.tag } }))
`

async function setup (t: Test): Promise<{ node: string, pod: string, dir: string, log: string, bridgeConf: unknown, read: () => Promise<Record[]> }> {
  const tag = runTag()
  const node = await addNetns(t, tag, 'node')
  const pod = await addNetns(t, tag, 'pod')
  const dir = t.testdir()
  await fs.writeFile(join(dir, 'recorder'), RECORDER, { mode: 0o755 })
  const log = join(dir, 'log.jsonl')
  // The bridge plugin makes its own bridge here: this test is about the runtime, not the bridge.
  const bridgeConf = {
    type: 'bridge',
    bridge: `pmrt${tag}`.slice(0, 15),
    isGateway: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: '10.33.1.0/24' }]], dataDir: join(dir, 'ipam') }
  }
  const read = async (): Promise<Record[]> =>
    (await fs.readFile(log, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as Record)
  return { node, pod, dir, log, bridgeConf, read }
}

t.test('ADD in order with prevResult and runtimeConfig; DEL in reverse with the cached result', async t => {
  const { node, pod, dir, log, bridgeConf, read } = await setup(t)
  const conflist = {
    cniVersion: '1.0.0',
    name: 'rt',
    plugins: [
      bridgeConf,
      { type: 'recorder', tag: 'a', log, capabilities: { portMappings: true } },
      { type: 'recorder', tag: 'b', log, capabilities: { bandwidth: true } }
    ]
  }
  const portMappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }]
  const opts = {
    conflist, containerId: 'ctr-1', netns: pod, hostNetns: node, pluginDirs: [dir, '/usr/lib/cni'],
    capabilityArgs: { portMappings }, cacheDir: join(dir, 'cache')
  }
  t.teardown(() => cniDel(opts).catch(() => {}))
  const result = await cniAdd(opts)
  t.match(result, { cniVersion: '1.0.0', ips: [{ address: /^10\.33\.1\.\d+\/24$/, gateway: '10.33.1.1' }], dns: { domain: 'b' } },
    'the last plugin\'s result')

  const add = await read()
  t.strictSame(add.map(r => `${r.command} ${r.tag}`), ['ADD a', 'ADD b'])
  const [a, b] = add as [Record, Record]
  const bridgeResult = a.conf.prevResult as { dns?: unknown }
  t.match(bridgeResult, { ips: result.ips, interfaces: result.interfaces }, 'a got the bridge result as prevResult')
  t.notMatch(bridgeResult, { dns: { domain: String } }, '... unmarked')
  t.strictSame(b.conf.prevResult, { ...bridgeResult, dns: { domain: 'a' } }, 'b got a\'s result as prevResult')
  t.match(a.conf, { name: 'rt', cniVersion: '1.0.0', type: 'recorder', tag: 'a' }, 'name and cniVersion injected')
  t.strictSame(a.conf.runtimeConfig, { portMappings }, 'declared capability gets its runtime args')
  t.notOk('runtimeConfig' in b.conf, 'a capability the runtime has no args for is not passed')
  t.strictSame(a.env, {
    CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'ctr-1', CNI_NETNS: `/var/run/netns/${pod}`, CNI_IFNAME: 'eth0', CNI_PATH: `${dir}:/usr/lib/cni`
  })
  const cacheFiles = await fs.readdir(join(dir, 'cache'))
  t.equal(cacheFiles.length, 1, 'ADD result cached for DEL')

  await fs.rm(log)
  // No prevResult or capability args given: both come from the cache.
  await cniDel({ conflist, containerId: 'ctr-1', netns: pod, hostNetns: node, pluginDirs: [dir, '/usr/lib/cni'], cacheDir: join(dir, 'cache') })
  const del = await read()
  t.strictSame(del.map(r => `${r.command} ${r.tag}`), ['DEL b', 'DEL a'], 'reverse order')
  t.strictSame(del[0]?.conf.prevResult, result)
  t.strictSame(del[1]?.conf.prevResult, result)
  t.strictSame(del[1]?.conf.runtimeConfig, { portMappings })
  t.strictSame(await fs.readdir(join(dir, 'cache')), [], 'cache entry removed')
  t.strictSame((await fs.readdir(join(dir, 'ipam', 'rt'))).filter(f => f.startsWith('10.')), [], 'bridge DEL ran: IP released')
})

t.test('a failing plugin: typed error with the plugin name, its CNI error and stderr', async t => {
  const { node, pod, dir, log, bridgeConf } = await setup(t)
  const conflist = { cniVersion: '1.0.0', name: 'rtfail', plugins: [bridgeConf, { type: 'recorder', tag: 'x', log, fail: true }] }
  const opts = { conflist, containerId: 'ctr-2', netns: pod, hostNetns: node, pluginDirs: [dir, '/usr/lib/cni'] }
  t.teardown(() => cniDel({ ...opts, conflist: { ...conflist, plugins: [bridgeConf] } }).catch(() => {}))
  try {
    await cniAdd(opts)
    t.fail('ADD should fail')
  } catch (e) {
    t.ok(isCniPluginError(e))
    t.match(e, { code: 'ECNIPLUGIN', plugin: 'recorder', command: 'ADD', exitCode: 1, cniError: { code: 7, msg: 'told to fail', details: 'tag x' }, stderr: 'recorder stderr line' })
    t.match((e as Error).message, /CNI ADD recorder: told to fail \(tag x\) \[code 7\]; stderr: recorder stderr line/)
  }

  // A real plugin's error: the pod netns does not exist.
  const gone = { ...opts, conflist: { ...conflist, plugins: [bridgeConf] }, netns: `${pod}-missing` }
  await t.rejects(cniAdd(gone), { code: 'ECNIPLUGIN', plugin: 'bridge', command: 'ADD', cniError: { msg: /netns/ } })

  await t.rejects(cniAdd({ ...opts, conflist: { ...conflist, plugins: [{ type: 'nosuchplugin' }] } }),
    { code: 'ECNIRUNTIME', reason: 'no-plugin', message: /nosuchplugin/ })
  await t.rejects(cniAdd({ ...opts, conflist: { name: 'x', plugins: [] } }), { code: 'ECNIRUNTIME', reason: 'bad-conflist' })
  try { await cniAdd({ ...opts, conflist: undefined }) } catch (e) { t.ok(isCniRuntimeError(e), 'neither conflist nor path') }
})

// The CNI environment: what each command needs, CNI_ARGS, and the error 4 that names the variable.
import t from 'tap'
import { parseCniArgs, parseCniEnv } from '../../lib/cni-plugin/env'
import { CNI_CODE, isCniError } from '../../lib/cni-plugin/cni-error'

const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/var/run/netns/p1', CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' }

const refusal = (env: Record<string, string | undefined>): { code: number, msg: string } | undefined => {
  try { parseCniEnv(env); return undefined } catch (e) {
    if (!isCniError(e)) throw e
    return { code: e.code, msg: e.message }
  }
}

t.test('what parses', async t => {
  t.strictSame(parseCniEnv(base), { command: 'ADD', containerId: 'abc123', netns: '/var/run/netns/p1', ifname: 'eth0' })
  t.strictSame(parseCniEnv({ ...base, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-5d9f;K8S_POD_INFRA_CONTAINER_ID=abc123' }),
    { command: 'ADD', containerId: 'abc123', netns: '/var/run/netns/p1', ifname: 'eth0', podNamespace: 'shop', podName: 'web-5d9f' })
  t.strictSame(parseCniEnv({ CNI_COMMAND: 'VERSION' }), { command: 'VERSION', containerId: '', netns: '', ifname: '' }, 'VERSION needs nothing else')
  t.equal(parseCniEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }).netns, '', 'DEL without a netns (already gone)')
  t.equal(parseCniEnv({ ...base, CNI_CONTAINERID: 'a'.repeat(128) }).containerId.length, 128)
  t.strictSame([...parseCniArgs('A=1;;B=x=y')], [['A', '1'], ['B', 'x=y']])
})

t.test('what is refused, with code 4 and the variable named', async t => {
  const cases: Array<[string, Record<string, string | undefined>, RegExp]> = [
    ['no command', { ...base, CNI_COMMAND: undefined }, /^CNI_COMMAND: not set/],
    ['unknown command', { ...base, CNI_COMMAND: 'GC' }, /^CNI_COMMAND: "GC" is not one of/],
    ['no container ID', { ...base, CNI_CONTAINERID: '' }, /^CNI_CONTAINERID: not set/],
    ['container ID with a slash', { ...base, CNI_CONTAINERID: '../etc' }, /^CNI_CONTAINERID: "..\/etc" is not a container ID/],
    ['container ID ".."', { ...base, CNI_CONTAINERID: '..' }, /^CNI_CONTAINERID/],
    ['container ID too long', { ...base, CNI_CONTAINERID: 'a'.repeat(129) }, /^CNI_CONTAINERID/],
    ['no netns on ADD', { ...base, CNI_NETNS: undefined }, /^CNI_NETNS: not set \(needed for ADD\)/],
    ['no ifname', { ...base, CNI_IFNAME: undefined }, /^CNI_IFNAME: not set/],
    ['bad ifname', { ...base, CNI_IFNAME: 'a-very-long-interface' }, /^CNI_IFNAME: "a-very-long-interface" is not an interface name/],
    ['no CNI_PATH', { ...base, CNI_PATH: undefined }, /^CNI_PATH: not set/],
    ['CNI_ARGS pair without =', { ...base, CNI_ARGS: 'K8S_POD_NAME' }, /^CNI_ARGS: "K8S_POD_NAME" is not KEY=VALUE/],
    ['bad pod name', { ...base, CNI_ARGS: 'K8S_POD_NAME=Web_1' }, /^CNI_ARGS: K8S_POD_NAME "Web_1" is not a Kubernetes name/]
  ]
  for (const [name, env, msg] of cases) t.match(refusal(env), { code: CNI_CODE.invalidEnvironment, msg }, name)
})

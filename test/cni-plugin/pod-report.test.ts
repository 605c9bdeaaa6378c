// The spool's report format: round trip, the PodRecord it becomes, and every refusal of a bad file.
import t from 'tap'
import { formatPodReport, idOfReportFile, isPodReportError, parsePodReport, podRecordOf, type PodReport } from '../../lib/cni-plugin/pod-report'
import { podmeshPluginEntry } from '../../lib/cni-plugin/conflist-entry'

const report: PodReport = { v: 1, id: 'c0ffee', ifname: 'eth0', ips: ['10.22.0.5', 'fd00::5'], namespace: 'shop', name: 'web-1', labels: { tier: 'front', app: 'web' }, netns: '/var/run/netns/p1' }

t.test('round trip and record', async t => {
  const text = formatPodReport(report)
  t.equal(text, '{"v":1,"id":"c0ffee","ifname":"eth0","ips":["10.22.0.5","fd00::5"],"namespace":"shop","name":"web-1","labels":{"app":"web","tier":"front"},"netns":"/var/run/netns/p1"}\n', 'documented field order, labels sorted')
  t.strictSame(parsePodReport('/spool/c0ffee.json', text), { ...report, labels: { app: 'web', tier: 'front' } })
  const { namespace: _n, name: _m, ...bare } = report
  t.strictSame(parsePodReport('c0ffee.json', formatPodReport(bare)), { ...bare, labels: { app: 'web', tier: 'front' } }, 'namespace and name are optional')
  t.strictSame(podRecordOf(report, 'node-1'), { v: 1, id: 'c0ffee', node: 'node-1', ifname: 'eth0', ips: ['10.22.0.5', 'fd00::5'], namespace: 'shop', name: 'web-1', labels: { app: 'web', tier: 'front' } })
  t.equal(idOfReportFile('c0ffee.json'), 'c0ffee')
  t.equal(idOfReportFile('.c0ffee.1.ab.tmp'), undefined)
  t.equal(idOfReportFile('..json'), undefined)
  t.strictSame(podmeshPluginEntry(), { type: 'podmesh', podDir: '/run/podmesh/pods' })
  t.strictSame(podmeshPluginEntry('/var/run/x'), { type: 'podmesh', podDir: '/var/run/x' })
})

t.test('bad files, each with its reason', async t => {
  const base = JSON.parse(formatPodReport(report)) as Record<string, unknown>
  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '{"v":1', /not JSON/],
    ['an array', '[]', /not a JSON object/],
    ['another version', JSON.stringify({ ...base, v: 2 }), /version 2 is not 1/],
    ['unknown field', JSON.stringify({ ...base, extra: 1 }), /unknown field "extra"/],
    ['bad id', JSON.stringify({ ...base, id: '../x' }), /id must be a container ID/],
    ['id not the file\'s', JSON.stringify({ ...base, id: 'other' }), /holds id other, not the c0ffee its name says/],
    ['bad ifname', JSON.stringify({ ...base, ifname: '' }), /ifname must be an interface name/],
    ['no ips', JSON.stringify({ ...base, ips: [] }), /ips must list one or two addresses/],
    ['bad ip', JSON.stringify({ ...base, ips: ['10.0.0.256'] }), /"10\.0\.0\.256" is not an IP address/],
    ['ip not canonical', JSON.stringify({ ...base, ips: ['fd00:0::5'] }), /not in canonical form/],
    ['two IPv4', JSON.stringify({ ...base, ips: ['10.0.0.1', '10.0.0.2'] }), /one IPv4 then one IPv6/],
    ['bad namespace', JSON.stringify({ ...base, namespace: 'Shop' }), /namespace must be a Kubernetes name/],
    ['labels a list', JSON.stringify({ ...base, labels: [] }), /labels must be an object/],
    ['bad label value', JSON.stringify({ ...base, labels: { app: 3 } }), /label app: 3 is not a valid value/],
    ['no netns', JSON.stringify({ ...base, netns: undefined }), /netns must be a string/]
  ]
  for (const [name, text, msg] of cases) {
    const e = (() => { try { parsePodReport('/spool/c0ffee.json', text); return undefined } catch (e) { return e } })()
    t.ok(isPodReportError(e), `${name}: a PodReportError`)
    t.match((e as Error | undefined)?.message, msg, name)
    t.match((e as Error | undefined)?.message, /^pod report \/spool\/c0ffee\.json: /, `${name}: names the file`)
  }
})

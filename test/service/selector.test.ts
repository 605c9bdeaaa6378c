// Selectors and port specs as operators type them: what parses, what is refused and with which message.
import t from 'tap'
import { isSelectorError, parseSelector, selectorText, selects } from '../../lib/service/selector'
import { checkPortSet, isPortSpecError, parsePortSpec } from '../../lib/service/port-spec'

t.test('selectors that parse', async t => {
  const cases: Array<[string, Record<string, string>]> = [
    ['app=web', { app: 'web' }],
    ['app=web,tier=front', { app: 'web', tier: 'front' }],
    [' app = web , tier=front ', { app: 'web', tier: 'front' }],
    ['app==web', { app: 'web' }],
    ['example.com/team=a_b-c.d', { 'example.com/team': 'a_b-c.d' }],
    ['empty=', { empty: '' }]
  ]
  for (const [text, want] of cases) t.strictSame(parseSelector(text), want, text)
})

t.test('selectors that do not parse, each with its reason', async t => {
  const cases: Array<[string, RegExp]> = [
    ['', /selector is empty/],
    ['app', /"app" is not key=value/],
    ['app=web,', /"" is not key=value/],
    ['=web', /"" is not a valid label key/],
    ['-app=web', /"-app" is not a valid label key/],
    ['app=we b', /"we b" is not a valid label value for app/],
    ['app=web,app=db', /key app given twice/],
    ['app=' + 'x'.repeat(64), /is not a valid label value/]
  ]
  for (const [text, message] of cases) {
    const e = (() => { try { parseSelector(text); return undefined } catch (e) { return e } })()
    t.ok(isSelectorError(e), `${JSON.stringify(text)}: a SelectorError`)
    t.match((e as Error).message, message, JSON.stringify(text))
  }
})

t.test('matching and canonical text', async t => {
  const sel = parseSelector('tier=front,app=web')
  t.ok(selects(sel, { app: 'web', tier: 'front', extra: 'x' }), 'every pair present: selected')
  t.notOk(selects(sel, { app: 'web' }), 'a pair missing: not selected')
  t.notOk(selects(sel, { app: 'web', tier: 'back' }), 'a value differs: not selected')
  t.notOk(selects({}, { app: 'web' }), 'an empty selector selects nothing')
  t.notOk(selects({ constructor: 'x' }, {}), 'inherited properties are not labels')
  t.equal(selectorText(sel), 'app=web,tier=front')
})

t.test('port specs', async t => {
  t.strictSame(parsePortSpec('80:8080/tcp'), { protocol: 'tcp', port: 80, targetPort: 8080 })
  t.strictSame(parsePortSpec('53/udp'), { protocol: 'udp', port: 53, targetPort: 53 })
  t.strictSame(parsePortSpec('443'), { protocol: 'tcp', port: 443, targetPort: 443 })
  t.strictSame(parsePortSpec('9000:9001/SCTP'), { protocol: 'sctp', port: 9000, targetPort: 9001 })
  const bad: Array<[string, RegExp]> = [
    ['0', /port 0 is out of range \(1-65535\)/],
    ['65536', /port 65536 is out of range/],
    ['80:0', /target port 0 is out of range/],
    ['80/icmp', /protocol "icmp" is not tcp, udp or sctp/],
    ['http', /port "http" is not a port number/],
    ['80:', /target port "" is not a port number/],
    ['', /port "" is not a port number/],
    ['-1', /is not a port number/]
  ]
  for (const [text, message] of bad) {
    const e = (() => { try { parsePortSpec(text); return undefined } catch (e) { return e } })()
    t.ok(isPortSpecError(e), `${JSON.stringify(text)}: a PortSpecError`)
    t.match((e as Error).message, message, JSON.stringify(text))
  }
  t.throws(() => checkPortSet([parsePortSpec('80'), parsePortSpec('80:81/tcp')]), /port 80\/tcp is given twice/)
  t.doesNotThrow(() => checkPortSet([parsePortSpec('53/udp'), parsePortSpec('53/tcp')]), 'one port, two protocols')
  t.throws(() => checkPortSet([]), /at least one --port/)
})

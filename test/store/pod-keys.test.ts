// pods/<node>/<id> and services/<name> keys: built from valid names only, parsed back exactly,
// anything else refused with a KeyError naming the key.
import t from 'tap'
import { isKeyError } from '../../lib/store/keys'
import { nodePodsPrefix, parsePodKey, parseServiceKey, podKey, podsPrefix, serviceKey, servicesPrefix } from '../../lib/store/service-keys'

const P = '/podmesh/default/'
const refusal = (f: () => unknown): unknown => { try { f(); return undefined } catch (e) { return e } }

t.test('pod keys', async t => {
  t.equal(podsPrefix(P), '/podmesh/default/pods/')
  t.equal(nodePodsPrefix(P, 'node-1'), '/podmesh/default/pods/node-1/')
  const id = 'f'.repeat(64)
  t.equal(podKey(P, 'node-1', id), `/podmesh/default/pods/node-1/${id}`)
  t.strictSame(parsePodKey(P, podKey(P, 'node-1', id)), { node: 'node-1', id })
  t.strictSame(parsePodKey(P, `${P}pods/n.example/A_b.c-1`), { node: 'n.example', id: 'A_b.c-1' })

  const builds: Array<[string, string, RegExp]> = [
    ['Node-1', 'abc', /"Node-1" is not a valid node name/],
    ['a/b', 'abc', /"a\/b" is not a valid node name/],
    ['node-1', '', /"" is not a valid container ID/],
    ['node-1', 'a/b', /"a\/b" is not a valid container ID/],
    ['node-1', '..', /".." is not a valid container ID/],
    ['node-1', '-abc', /"-abc" is not a valid container ID/],
    ['node-1', 'x'.repeat(129), /is not a valid container ID \(1-128 of/]
  ]
  for (const [node, id, message] of builds) {
    const e = refusal(() => podKey(P, node, id))
    t.ok(isKeyError(e), `${node} ${id.slice(0, 20)}: a KeyError`)
    t.match((e as Error).message, message)
  }
  t.ok(isKeyError(refusal(() => nodePodsPrefix(P, '../x'))), 'a node folder for no node')

  const parses: Array<[string, RegExp]> = [
    [`${P}pods/node-1`, /a pod key is pods\/<node>\/<container id>/],
    [`${P}pods/node-1/abc/def`, /a pod key is pods/],
    [`${P}pods/node-1/`, /"" is not a valid container ID/],
    [`${P}pods//abc`, /"" is not a valid node name/],
    [`${P}pods/NODE/abc`, /"NODE" is not a valid node name/],
    [`${P}pods/node-1/a b`, /"a b" is not a valid container ID/],
    ['/podmesh/other/pods/node-1/abc', /not under \/podmesh\/default\/pods\//]
  ]
  for (const [key, message] of parses) {
    const e = refusal(() => parsePodKey(P, key))
    t.ok(isKeyError(e), `${key}: a KeyError`)
    t.match((e as Error).message, message, key)
    t.match((e as Error).message, `key ${JSON.stringify(key)}`, `${key}: named`)
  }
})

t.test('service keys', async t => {
  t.equal(servicesPrefix(P), '/podmesh/default/services/')
  t.equal(serviceKey(P, 'web'), '/podmesh/default/services/web')
  t.equal(parseServiceKey(P, `${P}services/web-2`), 'web-2')
  for (const name of ['', 'Web', '1web', 'web-', 'a/b', 'x'.repeat(64), 'web.example']) {
    t.ok(isKeyError(refusal(() => serviceKey(P, name))), `build ${JSON.stringify(name)}: refused`)
    t.ok(isKeyError(refusal(() => parseServiceKey(P, `${P}services/${name}`))), `parse ${JSON.stringify(name)}: refused`)
  }
  t.match((refusal(() => serviceKey(P, 'Web')) as Error).message, /"Web" is not a valid service name \(a DNS label/)
  t.ok(isKeyError(refusal(() => parseServiceKey(P, `${P}serviceips/10.96.0.1`))), 'another directory')
})

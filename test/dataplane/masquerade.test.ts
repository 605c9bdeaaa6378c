import t from 'tap'
import { masqueradeRules, MASQUERADE_CHAIN } from '../../lib/dataplane/pod-network'

t.test('IPv4: return early for every cluster destination, masquerade the rest', async t => {
  t.equal(masqueradeRules(4, ['10.244.7.0/24', 'fd00:10:244:7::/64'], ['10.244.0.0/16', 'fd00:10:244::/56']), [
    '*nat',
    `:${MASQUERADE_CHAIN} - [0:0]`,
    `-A ${MASQUERADE_CHAIN} -s 10.244.7.0/24 -d 10.244.0.0/16 -j RETURN`,
    `-A ${MASQUERADE_CHAIN} -s 10.244.7.0/24 -j MASQUERADE`,
    'COMMIT',
    ''
  ].join('\n'))
})

t.test('IPv6 rules only name IPv6 prefixes', async t => {
  const r = masqueradeRules(6, ['10.244.7.0/24', 'fd00:10:244:7::/64'], ['10.244.0.0/16', 'fd00:10:244::/56']) ?? ''
  t.match(r, '-s fd00:10:244:7::/64 -d fd00:10:244::/56 -j RETURN')
  t.notMatch(r, '10.244.')
})

t.test('no rules for a family the node has no subnet in', async t => {
  t.equal(masqueradeRules(6, ['10.244.7.0/24'], ['10.244.0.0/16']), undefined)
})

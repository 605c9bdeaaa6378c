// Which address a node publishes as its underlay: at start and after its addresses changed.
import t from 'tap'
import { chooseUnderlayAddress } from '../../lib/dataplane/underlay'
import type { Address } from '../../lib/dataplane/rtnl'

const v4 = (ip: string): Address => ({ index: 2, family: 4, ip, prefixLen: 24 })
const v6 = (ip: string): Address => ({ index: 2, family: 6, ip, prefixLen: 64 })

const cases: Array<{ name: string, addrs: Address[], keep?: string, want: string | undefined }> = [
  { name: 'start: the first global address', addrs: [v4('192.0.2.11'), v4('192.0.2.50')], want: '192.0.2.11' },
  { name: 'start: IPv4 before IPv6, whatever the kernel order', addrs: [v6('fe80::1'), v6('2001:db8::11'), v4('192.0.2.11')], want: '192.0.2.11' },
  { name: 'start: IPv6 when that is all', addrs: [v6('fe80::1'), v6('2001:db8::11')], want: '2001:db8::11' },
  { name: 'start: loopback and link-local do not count', addrs: [v4('127.0.0.1'), v6('::1'), v6('fe80::1')], want: undefined },
  { name: 'the address in use is kept while present, though another comes first', addrs: [v4('192.0.2.50'), v4('192.0.2.11')], keep: '192.0.2.11', want: '192.0.2.11' },
  { name: 'the address in use is gone: the first of its family', addrs: [v6('2001:db8::11'), v4('192.0.2.111'), v4('192.0.2.112')], keep: '192.0.2.11', want: '192.0.2.111' },
  { name: 'gone, and only the other family left: nothing (wait, never switch family)', addrs: [v6('2001:db8::11'), v6('fe80::1')], keep: '192.0.2.11', want: undefined },
  { name: 'IPv6 in use, gone: the next global IPv6, not IPv4, not link-local', addrs: [v4('192.0.2.11'), v6('fe80::1'), v6('2001:db8::99')], keep: '2001:db8::11', want: '2001:db8::99' },
  { name: 'no address at all', addrs: [], keep: '192.0.2.11', want: undefined }
]

for (const c of cases) {
  t.test(c.name, async t => { t.equal(chooseUnderlayAddress(c.addrs, c.keep), c.want) })
}

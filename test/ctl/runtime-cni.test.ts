// The doctor's containerd check, decided from facts (lib/ctl/runtime-cni.ts): which dirs a
// containerd config points its CRI plugin at, and the verdict for one node fixture as the config,
// the plugin dirs and the conf dir vary. The file-reading edge is exercised in doctor.test.ts.
import t from 'tap'
import { checkRuntimeCni, conflistPluginTypes, containerdCniConfig, type RuntimeCniFacts } from '../../lib/ctl/runtime-cni'

const DEBIAN_CONFIG = `version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/var/lib/containerd/opt"
`

t.test('containerd config → CNI dirs', async t => {
  const cases: Array<{ name: string, text: string | undefined, want: ReturnType<typeof containerdCniConfig> }> = [
    { name: 'no config file: the defaults', text: undefined, want: { binDirs: ['/opt/cni/bin'], confDir: '/etc/cni/net.d', criDisabled: false } },
    { name: 'Debian\'s example (version 2)', text: DEBIAN_CONFIG, want: { binDirs: ['/usr/lib/cni'], confDir: '/etc/cni/net.d', criDisabled: false } },
    {
      name: 'comments, literal strings, spaces in the header',
      text: '# bin_dir = "/nope"\n[ plugins."io.containerd.grpc.v1.cri".cni ]  # the CRI table\n  bin_dir = \'/usr/lib/cni\' # Debian\n  conf_dir = "/var/lib/podmesh/cni"\n',
      want: { binDirs: ['/usr/lib/cni'], confDir: '/var/lib/podmesh/cni', criDisabled: false }
    },
    { name: 'bin_dir in another table is not the CRI\'s', text: '[plugins."io.containerd.internal.v1.opt"]\nbin_dir = "/usr/lib/cni"\n', want: { binDirs: ['/opt/cni/bin'], confDir: '/etc/cni/net.d', criDisabled: false } },
    { name: 'version 1 (plugins.cri.cni)', text: 'version = 1\n[plugins.cri.cni]\nbin_dir = "/usr/lib/cni"\n', want: { binDirs: ['/usr/lib/cni'], confDir: '/etc/cni/net.d', criDisabled: false } },
    {
      name: 'containerd 2.1 (version 3, single-quoted table key, bin_dirs)',
      text: 'version = 3\n[plugins.\'io.containerd.cri.v1.runtime\'.cni]\n  bin_dirs = [\'/usr/lib/cni\', \'/opt/cni/bin\']\n  conf_dir = \'/etc/cni/net.d\'\n',
      want: { binDirs: ['/usr/lib/cni', '/opt/cni/bin'], confDir: '/etc/cni/net.d', criDisabled: false }
    },
    { name: 'CRI disabled (Docker\'s containerd)', text: 'disabled_plugins = ["cri"]\n', want: { binDirs: ['/opt/cni/bin'], confDir: '/etc/cni/net.d', criDisabled: true } },
    { name: 'disabled_plugins inside a table is not the top-level key', text: '[foo]\ndisabled_plugins = ["cri"]\n', want: { binDirs: ['/opt/cni/bin'], confDir: '/etc/cni/net.d', criDisabled: false } }
  ]
  for (const c of cases) t.strictSame(containerdCniConfig(c.text), c.want, c.name)
})

t.test('conflist → plugin types, ipam included', async t => {
  const conflist = JSON.stringify({ cniVersion: '1.0.0', name: 'podmesh', plugins: [{ type: 'bridge', ipam: { type: 'host-local' } }, { type: 'portmap' }] })
  t.strictSame(conflistPluginTypes(conflist), ['bridge', 'host-local', 'portmap'])
  t.equal(conflistPluginTypes('{"name":"x"}'), undefined, 'no plugins list')
  t.equal(conflistPluginTypes('not json'), undefined)
})

const ALL = ['bridge', 'host-local', 'portmap', 'loopback', 'ptp']
const base: RuntimeCniFacts = {
  configPath: '/etc/containerd/config.toml',
  configText: DEBIAN_CONFIG,
  installed: true,
  podmeshConfDir: '/etc/cni/net.d',
  conflistFile: '10-podmesh.conflist',
  conflistPlugins: ['bridge', 'host-local', 'portmap'],
  executables: new Map([['/usr/lib/cni', ALL], ['/opt/cni/bin', []]]),
  confDirIsPodmesh: true,
  confDirFiles: ['10-podmesh.conflist']
}

t.test('the verdict for one node as its config, plugin dirs and conf dir vary', async t => {
  const cases: Array<{ name: string, facts: Partial<RuntimeCniFacts>, want: { result: string, detail: RegExp, fix?: RegExp } }> = [
    { name: 'Debian config, conflist written: OK', facts: {}, want: { result: 'OK', detail: /reads \/etc\/cni\/net\.d\/10-podmesh\.conflist .*bridge, host-local, portmap, loopback in \/usr\/lib\/cni/ } },
    { name: 'containerd not installed', facts: { configText: undefined, installed: false }, want: { result: 'OK', detail: /not installed/ } },
    {
      name: 'no config: /opt/cni/bin is empty, the plugins are in /usr/lib/cni',
      facts: { configText: undefined },
      want: { result: 'FAIL', detail: /looks for plugins in \/opt\/cni\/bin \(no \/etc\/containerd\/config\.toml: containerd's defaults\), which lacks bridge, host-local, portmap, loopback/, fix: /bin_dir = "\/usr\/lib\/cni".*or link them: mkdir -p \/opt\/cni\/bin && ln -s \/usr\/lib\/cni\/\* \/opt\/cni\/bin\// }
    },
    {
      name: 'bin_dir holds all but loopback (the CRI plugin needs it for lo)',
      facts: { executables: new Map([['/usr/lib/cni', ['bridge', 'host-local', 'portmap']]]) },
      want: { result: 'FAIL', detail: /which lacks loopback$/, fix: /apt install containernetworking-plugins/ }
    },
    {
      name: 'a plugin the written conflist names beyond the usual ones',
      facts: { conflistPlugins: ['bridge', 'host-local', 'portmap', 'bandwidth'] },
      want: { result: 'FAIL', detail: /lacks bandwidth/ }
    },
    { name: 'CRI disabled: nothing to check', facts: { configText: 'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n' }, want: { result: 'OK', detail: /CRI plugin disabled/ } },
    {
      name: 'podmeshd writes elsewhere than conf_dir',
      facts: { podmeshConfDir: '/var/lib/podmesh/cni', confDirIsPodmesh: false, confDirFiles: ['10-podmesh.conflist'] },
      want: { result: 'FAIL', detail: /reads network configs from \/etc\/cni\/net\.d .*podmeshd writes \/var\/lib\/podmesh\/cni\/10-podmesh\.conflist/, fix: /conf_dir = "\/var\/lib\/podmesh\/cni".*or run podmeshd with --cni-conf-dir \/etc\/cni\/net\.d/ }
    },
    { name: 'conflist not written yet', facts: { confDirFiles: undefined, conflistPlugins: undefined }, want: { result: 'WARN', detail: /has not written 10-podmesh\.conflist yet/, fix: /start podmeshd/ } },
    {
      name: 'another config sorts first',
      facts: { confDirFiles: ['10-podmesh.conflist', '05-other.conf', '.10-podmesh.conflist.1.tmp'] },
      want: { result: 'WARN', detail: /loads \/etc\/cni\/net\.d\/05-other\.conf first/, fix: /sorts after 10-podmesh\.conflist/ }
    },
    { name: 'a temp file or a non-config file does not count', facts: { confDirFiles: ['.10-podmesh.conflist.1.tmp', '10-podmesh.conflist', 'README'] }, want: { result: 'OK', detail: /reads/ } }
  ]
  for (const c of cases) {
    const got = checkRuntimeCni({ ...base, ...c.facts })
    t.equal(got.check, 'containerd cni', `${c.name}: the check's name`)
    t.equal(got.result, c.want.result, `${c.name}: ${got.detail}`)
    t.match(got.detail, c.want.detail, `${c.name}: detail`)
    if (c.want.fix !== undefined) t.match(got.fix, c.want.fix, `${c.name}: fix`)
    if (got.result !== 'OK') t.ok(got.fix, `${c.name}: says how to fix it`)
  }
})

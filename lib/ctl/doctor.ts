// `podmeshctl doctor`: checks a node for what podmeshd needs — WireGuard (kernel module or
// wireguard-go), forwarding, rp_filter, underlay MTU, etcd reachability and TLS, CNI plugins,
// clock skew with etcd, where containerd looks for CNI plugins and configs. Each check prints
// OK/WARN/FAIL with the fix; any FAIL exits 1.
import { access, readFile, readdir, realpath } from 'node:fs/promises'
import { constants } from 'node:fs'
import { basename, delimiter, join } from 'node:path'
import { release } from 'node:os'
import type { EtcdOptions } from '../config/etcd-options'
import type { NetworkConfig } from '../config/network'
import { isStoreError, type StoreClient } from '../store/client'
import { readConfig } from '../store/config-store'
import { Rtnl } from '../dataplane/rtnl'
import { findUnderlay } from '../dataplane/underlay'
import { parseIp } from '../ipam/cidr'
import { primaryTransport } from '../mesh/desired'
import { deviceMtu, describeDeviceMtu, overrideTooLarge, tunnelOverhead, type PeerPath } from '../mesh/mtu'
import { type ClusterRead, readCluster } from './cluster-read'
import { parseEndpoint } from '../store/endpoint'
import { type OutputFormat, formatJson, formatTable } from './output'
import { nodeArgOptions, nodeFlagsHelp } from './node-flags'
import { CONTAINERD_CONFIG, checkRuntimeCni, conflistPluginTypes, containerdCniConfig, dirsToList } from './runtime-cni'
import { conflistPath } from '../dataplane/cni/conflist-file'

/**
 * The daemon's underlay and conflist flags: doctor checks the underlay podmeshd would use
 * (default: the default route's) and that containerd reads the conflist podmeshd writes.
 */
export const DOCTOR_FLAGS = ['publicAddress', 'publicInterface', 'cniConfDir', 'cniNetwork'] as const

/** doctor's own flag: containerd's config file (where its CRI plugin's bin_dir and conf_dir are set). */
export const CONTAINERD_CONFIG_FLAG = { flag: 'containerd-config', env: 'PODMESH_CONTAINERD_CONFIG', default: CONTAINERD_CONFIG } as const

export const doctorHelp = `podmeshctl doctor   check this node's prerequisites (OK/WARN/FAIL with the fix; exit 1 on FAIL);
                     the underlay and the conflist are podmeshd's, from these flags (else the
                     default route's and podmeshd's defaults)
${nodeFlagsHelp(DOCTOR_FLAGS)}  ${`--${CONTAINERD_CONFIG_FLAG.flag} FILE`.padEnd(25)} containerd's config: where it looks for CNI plugins and configs [${CONTAINERD_CONFIG_FLAG.env}] (default ${CONTAINERD_CONFIG_FLAG.default})
`
export const doctorOptions = { ...nodeArgOptions(DOCTOR_FLAGS), [CONTAINERD_CONFIG_FLAG.flag]: { type: 'string' as const } }

/** Where podmeshd writes its conflist and where containerd's config is (doctor's defaults: podmeshd's and containerd's). */
export interface RuntimeCniOptions { containerdConfig: string, cniConfDir: string, cniNetwork: string }

export type CheckResult = 'OK' | 'WARN' | 'FAIL'
export interface Check { check: string, result: CheckResult, detail: string, fix?: string }

const CNI_DIRS = ['/usr/lib/cni', '/opt/cni/bin']
const CNI_PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback']

const exists = async (p: string, mode = constants.F_OK): Promise<boolean> => await access(p, mode).then(() => true, () => false)
const readProc = async (p: string): Promise<string | undefined> => await readFile(p, 'utf8').then(s => s.trim(), () => undefined)

async function onPath (bin: string): Promise<string | undefined> {
  for (const d of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    if (await exists(join(d, bin), constants.X_OK)) return join(d, bin)
  }
  return undefined
}

async function checkWireguard (): Promise<Check> {
  const wg = await onPath('wg')
  if (wg === undefined) return { check: 'wireguard', result: 'FAIL', detail: '`wg` not found', fix: 'apt install wireguard-tools' }
  if (await exists('/sys/module/wireguard')) return { check: 'wireguard', result: 'OK', detail: 'kernel module loaded' }
  // Not loaded yet is not absent: podmeshd's first WireGuard link loads it.
  const deps = await readProc(`/lib/modules/${release()}/modules.dep`)
  if (deps !== undefined && /\/wireguard\.ko(\.[a-z]+)?:/.test(deps)) return { check: 'wireguard', result: 'OK', detail: 'kernel module available (loaded on first use)' }
  const go = await onPath('wireguard-go')
  if (go !== undefined) return { check: 'wireguard', result: 'OK', detail: `no kernel module; userspace ${go}` }
  return { check: 'wireguard', result: 'FAIL', detail: 'no kernel module and no wireguard-go', fix: 'modprobe wireguard, or apt install wireguard-go' }
}

async function checkForwarding (config: NetworkConfig | undefined): Promise<Check[]> {
  const keys: Array<[string, string]> = [['net.ipv4.ip_forward', '/proc/sys/net/ipv4/ip_forward']]
  if (config === undefined || config.ipv6 !== undefined) keys.push(['net.ipv6.conf.all.forwarding', '/proc/sys/net/ipv6/conf/all/forwarding'])
  const out: Check[] = []
  for (const [k, p] of keys) {
    const v = await readProc(p)
    out.push(v === '1'
      ? { check: k, result: 'OK', detail: '1' }
      : { check: k, result: 'FAIL', detail: v ?? 'unreadable', fix: `sysctl -w ${k}=1 and persist it in /etc/sysctl.d/ (podmeshd also sets it at start)` })
  }
  return out
}

async function checkRpFilter (): Promise<Check> {
  const all = await readProc('/proc/sys/net/ipv4/conf/all/rp_filter')
  const def = await readProc('/proc/sys/net/ipv4/conf/default/rp_filter')
  // The kernel uses max(all, <interface>): strict on either drops asymmetric tunnel traffic.
  if (all === '1' || def === '1') {
    return { check: 'rp_filter', result: 'WARN', detail: `strict (all=${all ?? '?'} default=${def ?? '?'})`, fix: 'sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 (loose)' }
  }
  return { check: 'rp_filter', result: 'OK', detail: `all=${all ?? '?'} default=${def ?? '?'}` }
}

/**
 * The underlay and the tunnel MTU this node's primary device would get with the cluster's current
 * records as peers (their endpoints' families), by the daemon's own function. A configured mtu
 * that a peer's path cannot carry is a warning; a tunnel MTU below the family minimum fails.
 */
async function checkUnderlay (config: NetworkConfig | undefined, want: { address?: string, interface?: string }, recorded: readonly RecordedPeer[]): Promise<Check> {
  let rtnl: Rtnl | undefined
  try {
    rtnl = Rtnl.open()
    const u = await findUnderlay(rtnl, want)
    const family = parseIp(u.ip).family
    // This node's own record is no peer.
    const peers: PeerPath[] = recorded.filter(p => p.ip !== u.ip).map(({ node, family }) => ({ node, family }))
    const transport = config === undefined ? 'wireguard' : primaryTransport(config)
    const d = deviceMtu({ transport, underlayFamily: family, underlayMtu: u.mtu, peers, ...(config?.mtu !== undefined ? { override: config.mtu } : {}) })
    // IPv6 needs 1280 on every link, pods included.
    const min = config === undefined || config.ipv6 !== undefined ? 1280 : 576
    const detail = `${u.ifname} ${u.ip} mtu ${u.mtu} → tunnel ${describeDeviceMtu(transport, d)} (${peers.length} peers; overhead ${tunnelOverhead(transport, 4)} over IPv4, ${tunnelOverhead(transport, 6)} over IPv6)`
    if (d.fits < min) return { check: 'underlay mtu', result: 'FAIL', detail, fix: `raise ${u.ifname}'s MTU to at least ${min + tunnelOverhead(transport, 6)}` }
    if (overrideTooLarge(d)) return { check: 'underlay mtu', result: 'WARN', detail, fix: `lower the config's mtu to ${d.fits} (podmeshctl init --mtu ${d.fits} --force), or leave it unset` }
    return { check: 'underlay mtu', result: 'OK', detail }
  } catch (e) {
    return { check: 'underlay mtu', result: 'FAIL', detail: (e as Error).message, fix: 'pass --public-address or --public-interface, or add a default route' }
  } finally {
    rtnl?.close()
  }
}

interface RecordedPeer extends PeerPath { ip: string }

/** Every node's endpoint address and family as the records state them. */
const recordedPeers = (c: ClusterRead | undefined): RecordedPeer[] =>
  (c?.nodes ?? []).map(n => { const e = parseEndpoint(n.endpoint); return { node: n.name, ip: e.ip, family: e.family } })

/**
 * What this node's path-MTU discovery found, from its own status value: the peers behind a path
 * narrower than the links and the MTU their routes got. Not a check where this host is no node.
 * A config mtu above what such a path carries is a warning: pods are sized for the config, and
 * only the routes toward those peers are not.
 */
async function checkPathMtu (config: NetworkConfig | undefined, want: { address?: string, interface?: string }, cluster: ClusterRead | undefined): Promise<Check | undefined> {
  if (cluster === undefined) return undefined
  let rtnl: Rtnl | undefined
  let ip: string
  try {
    rtnl = Rtnl.open()
    ip = (await findUnderlay(rtnl, want)).ip
  } catch {
    return undefined
  } finally {
    rtnl?.close()
  }
  const own = recordedPeers(cluster).find(p => p.ip === ip)
  if (own === undefined) return undefined
  const m = cluster.statuses.get(own.node)?.mtu
  if (m === undefined) return { check: 'path mtu', result: 'WARN', detail: `no MTU report in ${own.node}'s status yet`, fix: 'check that podmeshd runs on this node (systemctl status podmeshd)' }
  const narrow = m.narrow ?? []
  if (narrow.length === 0) return { check: 'path mtu', result: 'OK', detail: `every peer's path carries its device's MTU (${own.node}'s path-MTU discovery)` }
  const list = narrow.map(n => `${n.node} ${n.pathMtu} (routes ${n.routeMtu})`).join(', ') + (m.narrowOmitted !== undefined ? ` and ${m.narrowOmitted} more` : '')
  const detail = `peers behind a narrower path, their routes sized for it: ${list}`
  if (config?.mtu !== undefined) {
    const smallest = Math.min(...narrow.map(n => n.routeMtu))
    return { check: 'path mtu', result: 'WARN', detail: `the config's mtu ${config.mtu} does not fit every path; ${detail}`, fix: `pods are sized for ${config.mtu}; to size them for every path, podmeshctl init --mtu ${smallest} --force` }
  }
  return { check: 'path mtu', result: 'OK', detail }
}

async function checkCni (): Promise<Check> {
  const missing: string[] = []
  const found: string[] = []
  for (const p of CNI_PLUGINS) {
    let at: string | undefined
    for (const d of CNI_DIRS) if (at === undefined && await exists(join(d, p), constants.X_OK)) at = join(d, p)
    if (at === undefined) missing.push(p); else found.push(at)
  }
  if (missing.length > 0) return { check: 'cni plugins', result: 'FAIL', detail: `missing ${missing.join(', ')} in ${CNI_DIRS.join(' or ')}`, fix: 'apt install containernetworking-plugins' }
  return { check: 'cni plugins', result: 'OK', detail: found.join(' ') }
}

async function executables (dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[])
  const ok = await Promise.all(names.map(async n => await exists(join(dir, n), constants.X_OK)))
  return names.filter((_, i) => ok[i] === true)
}

/** Same directory, through symlinks when both exist (/etc/cni/net.d may link to podmesh's dir). */
async function sameDir (a: string, b: string): Promise<boolean> {
  const real = async (p: string): Promise<string> => await realpath(p).catch(() => p.replace(/\/+$/, ''))
  return await real(a) === await real(b)
}

/** The thin edge of the containerd check (runtime-cni.ts decides): reads the config, the dirs, the conflist. */
async function checkContainerdCni (o: RuntimeCniOptions): Promise<Check> {
  let configText: string | undefined
  try {
    configText = await readFile(o.containerdConfig, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return { check: 'containerd cni', result: 'WARN', detail: `cannot read ${o.containerdConfig}: ${(e as Error).message}`, fix: 'run doctor as root' }
  }
  const config = containerdCniConfig(configText)
  const listed = new Map<string, string[]>()
  for (const d of dirsToList(config)) listed.set(d, await executables(d))
  const ours = conflistPath(o.cniConfDir, o.cniNetwork)
  const conflistText = await readFile(ours, 'utf8').catch(() => undefined)
  return checkRuntimeCni({
    configPath: o.containerdConfig,
    configText,
    installed: (await onPath('containerd')) !== undefined,
    podmeshConfDir: o.cniConfDir,
    conflistFile: basename(ours),
    conflistPlugins: conflistText === undefined ? undefined : conflistPluginTypes(conflistText),
    executables: listed,
    confDirIsPodmesh: await sameDir(config.confDir, o.cniConfDir),
    confDirFiles: await readdir(config.confDir).catch(() => undefined)
  })
}

/** etcd's HTTP answers carry a Date header (second resolution): compare it with the local clock. */
async function checkClock (etcd: EtcdOptions): Promise<Check> {
  const url = etcd.endpoints.find(e => e.startsWith('http://'))
  if (url === undefined) return { check: 'clock skew', result: 'OK', detail: 'not measured (TLS endpoints only; check chrony/timesyncd)' }
  try {
    const t0 = Date.now()
    const res = await fetch(`${url.replace(/\/$/, '')}/version`, { signal: AbortSignal.timeout(3000) })
    const t1 = Date.now()
    const date = res.headers.get('date')
    if (date === null) return { check: 'clock skew', result: 'OK', detail: 'not measured (no Date header)' }
    const skew = Math.abs((t0 + t1) / 2 - Date.parse(date)) / 1000
    // ±1 s is the header's resolution; beyond a few seconds status ages and handshake ages mislead.
    if (skew > 5) return { check: 'clock skew', result: 'FAIL', detail: `${skew.toFixed(1)} s against ${url}`, fix: 'sync the clock (chrony, systemd-timesyncd)' }
    return { check: 'clock skew', result: 'OK', detail: `≤ ${Math.max(1, Math.ceil(skew))} s against ${url}` }
  } catch (e) {
    return { check: 'clock skew', result: 'WARN', detail: `not measured: ${(e as Error).message}` }
  }
}

export async function doctorChecks (client: StoreClient, prefix: string, etcd: EtcdOptions, want: { address?: string, interface?: string }, runtime: RuntimeCniOptions): Promise<Check[]> {
  const checks: Check[] = []
  let config: NetworkConfig | undefined
  const tls = etcd.endpoints.some(e => e.startsWith('https://'))
  // A handshake etcd refused (or we refused) is the TLS check's failure, not a pass beside a failed etcd check.
  let handshake: Error | undefined
  try {
    const t0 = Date.now()
    config = await readConfig(client, prefix)
    checks.push({ check: 'etcd', result: 'OK', detail: `${etcd.endpoints.join(',')} answered in ${Date.now() - t0} ms; config at ${prefix}config` })
  } catch (e) {
    if (isStoreError(e) && e.kind === 'tls') handshake = e
    checks.push({ check: 'etcd', result: 'FAIL', detail: (e as Error).message, fix: 'check --etcd-endpoints, credentials, that etcd runs, and that `podmeshctl init` was run' })
  }
  if (handshake !== undefined) {
    checks.push({ check: 'etcd tls', result: 'FAIL', detail: handshake.message, fix: 'see "etcd over TLS" in docs/operations.md: --etcd-ca, --etcd-cert/--etcd-key, the server certificate\'s subjectAltName' })
  } else if (tls) {
    checks.push(etcd.caFile !== undefined
      ? { check: 'etcd tls', result: 'OK', detail: `CA ${etcd.caFile}${etcd.certFile !== undefined ? `, client cert ${etcd.certFile}` : ''}` }
      : { check: 'etcd tls', result: 'WARN', detail: 'https endpoints verified against the system CAs', fix: 'pass --etcd-ca with the cluster CA' })
  } else if (etcd.caFile !== undefined || etcd.certFile !== undefined) {
    checks.push({ check: 'etcd tls', result: 'FAIL', detail: 'TLS files given but the endpoints are http://', fix: 'use https:// endpoints' })
  } else {
    checks.push({ check: 'etcd tls', result: 'WARN', detail: 'plain http: node records and status travel unencrypted', fix: 'serve etcd over TLS and pass --etcd-ca/--etcd-cert/--etcd-key' })
  }
  if (config === undefined || config.backend.type === 'wireguard') checks.push(await checkWireguard())
  checks.push(...await checkForwarding(config))
  checks.push(await checkRpFilter())
  const cluster = config === undefined ? undefined : await readCluster(client, prefix).catch(() => undefined)
  checks.push(await checkUnderlay(config, want, recordedPeers(cluster)))
  const path = await checkPathMtu(config, want, cluster)
  if (path !== undefined) checks.push(path)
  checks.push(await checkCni())
  checks.push(await checkContainerdCni(runtime))
  checks.push(await checkClock(etcd))
  return checks
}

export async function runDoctor (client: StoreClient, prefix: string, format: OutputFormat, etcd: EtcdOptions, want: { address?: string, interface?: string }, runtime: RuntimeCniOptions): Promise<{ text: string, exitCode: number }> {
  const checks = await doctorChecks(client, prefix, etcd, want, runtime)
  const exitCode = checks.some(c => c.result === 'FAIL') ? 1 : 0
  if (format === 'json') return { text: formatJson(checks), exitCode }
  return { text: formatTable([['CHECK', 'RESULT', 'DETAIL', 'FIX'], ...checks.map(c => [c.check, c.result, c.detail, c.fix ?? ''])]), exitCode }
}

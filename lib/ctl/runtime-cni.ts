// Where containerd looks for CNI plugins and network configs, and whether podmesh's conflist and
// the plugins it names are there: the doctor's "containerd cni" check. Pure: the doctor's edge
// reads the config file and lists the directories, and passes what it found in.
//
// containerd's CRI plugin reads `bin_dir` and `conf_dir` from its config (default /opt/cni/bin
// and /etc/cni/net.d); Debian's containernetworking-plugins installs into /usr/lib/cni, so with
// the defaults the plugins are not where containerd looks. Only the few TOML keys needed are
// read: the [plugins."io.containerd.grpc.v1.cri".cni] table (config version 2; `plugins.cri.cni`
// in version 1, `plugins.'io.containerd.cri.v1.runtime'.cni` in containerd 2's version 3), its
// bin_dir (or 2.1's bin_dirs) and conf_dir, and disabled_plugins.

import type { Check } from './doctor'

export const CONTAINERD_CONFIG = '/etc/containerd/config.toml'
export const CONTAINERD_DEFAULT_BIN_DIR = '/opt/cni/bin'
export const CONTAINERD_DEFAULT_CONF_DIR = '/etc/cni/net.d'
/** Where Debian's containernetworking-plugins puts them. */
export const DEBIAN_PLUGIN_DIR = '/usr/lib/cni'
/** The CRI plugin also sets up each pod's loopback with this plugin, whatever the conflist says. */
const CRI_EXTRA_PLUGINS = ['loopback']
/** What podmeshd's conflist names (lib/mesh/cni-config.ts), for when it is not written yet. */
export const PODMESH_PLUGINS = ['bridge', 'host-local', 'portmap']

const CNI_TABLES = ['plugins."io.containerd.grpc.v1.cri".cni', 'plugins.cri.cni', 'plugins."io.containerd.cri.v1.runtime".cni']
const CRI_NAMES = ['io.containerd.grpc.v1.cri', 'cri', 'io.containerd.cri.v1.runtime']

export interface ContainerdCniConfig {
  binDirs: string[]
  confDir: string
  /** The CRI plugin is listed in disabled_plugins: containerd runs no pods through CNI. */
  criDisabled: boolean
}

/** A TOML basic or literal string, or an array of them; undefined for anything else. */
function tomlValue (text: string): string | string[] | undefined {
  const v = text.trim()
  const one = (s: string): string | undefined => {
    const m = /^"((?:[^"\\]|\\.)*)"$/.exec(s) ?? /^'([^']*)'$/.exec(s)
    if (m === null) return undefined
    return s.startsWith('"') ? JSON.parse(`"${m[1] as string}"`) as string : m[1]
  }
  if (v.startsWith('[')) {
    if (!v.endsWith(']')) return undefined
    const items = v.slice(1, -1).split(',').map(s => s.trim()).filter(s => s !== '')
    const out = items.map(one)
    return out.every((s): s is string => s !== undefined) ? out : undefined
  }
  return one(v)
}

/** Strips a trailing comment outside strings (good enough for the keys read here). */
function stripComment (line: string): string {
  let quote: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++
      else if (c === quote) quote = undefined
    } else if (c === '"' || c === '\'') quote = c
    else if (c === '#') return line.slice(0, i)
  }
  return line
}

/** containerd's CNI dirs from its config text; undefined text means no config file (the defaults). */
export function containerdCniConfig (text: string | undefined): ContainerdCniConfig {
  let binDirs: string[] | undefined
  let confDir: string | undefined
  let disabled: string[] = []
  let table = ''
  for (const raw of (text ?? '').split('\n')) {
    const line = stripComment(raw).trim()
    if (line === '') continue
    const header = /^\[([^[\]]+)\]$/.exec(line)
    // Quoted keys compare by content: containerd 2 writes plugins.'io.containerd.cri.v1.runtime'.cni.
    if (header !== null) { table = (header[1] as string).replace(/\s+/g, '').replace(/'/g, '"'); continue }
    const kv = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line)
    if (kv === null) continue
    const [, key, rawValue] = kv as unknown as [string, string, string]
    const value = tomlValue(rawValue)
    if (table === '' && key === 'disabled_plugins' && Array.isArray(value)) disabled = value
    if (!CNI_TABLES.includes(table)) continue
    if (key === 'bin_dir' && typeof value === 'string') binDirs = [value]
    if (key === 'bin_dirs' && Array.isArray(value)) binDirs = value
    if (key === 'conf_dir' && typeof value === 'string') confDir = value
  }
  return {
    binDirs: binDirs !== undefined && binDirs.length > 0 ? binDirs : [CONTAINERD_DEFAULT_BIN_DIR],
    confDir: confDir ?? CONTAINERD_DEFAULT_CONF_DIR,
    criDisabled: disabled.some(d => CRI_NAMES.includes(d))
  }
}

/** The plugin types a conflist names, its plugins' ipam types included; undefined when it is no conflist. */
export function conflistPluginTypes (text: string): string[] | undefined {
  let doc: unknown
  try { doc = JSON.parse(text) } catch { return undefined }
  const plugins = (doc as { plugins?: unknown } | null)?.plugins
  if (!Array.isArray(plugins)) return undefined
  const types: string[] = []
  for (const p of plugins as Array<{ type?: unknown, ipam?: { type?: unknown } }>) {
    if (typeof p?.type === 'string') types.push(p.type)
    if (typeof p?.ipam?.type === 'string') types.push(p.ipam.type)
  }
  return [...new Set(types)]
}

/** What the doctor's edge found on the node. */
export interface RuntimeCniFacts {
  configPath: string
  /** The config file's text; undefined when there is none. */
  configText: string | undefined
  /** A containerd binary is on PATH. */
  installed: boolean
  /** Where podmeshd writes its conflist (--cni-conf-dir) and the file's name. */
  podmeshConfDir: string
  conflistFile: string
  /** The conflist's plugin types when podmeshd has written it. */
  conflistPlugins: string[] | undefined
  /** Executable file names per directory asked about (bin dirs and DEBIAN_PLUGIN_DIR). */
  executables: ReadonlyMap<string, readonly string[]>
  /** containerd's conf_dir is podmeshd's conf dir (the same directory, symlinks resolved). */
  confDirIsPodmesh: boolean
  /** Config file names (*.conf, *.conflist, *.json) in containerd's conf_dir; undefined when it does not exist. */
  confDirFiles: readonly string[] | undefined
}

const CHECK = 'containerd cni'
const isNetConf = (f: string): boolean => /\.(conflist|conf|json)$/.test(f) && !f.startsWith('.')

/** The directories whose executables the check needs listed, for a given config. */
export const dirsToList = (c: ContainerdCniConfig): string[] => [...new Set([...c.binDirs, DEBIAN_PLUGIN_DIR])]

export function checkRuntimeCni (f: RuntimeCniFacts): Check {
  if (f.configText === undefined && !f.installed) {
    return { check: CHECK, result: 'OK', detail: `containerd not installed (no ${f.configPath}, no containerd on PATH)` }
  }
  const c = containerdCniConfig(f.configText)
  const source = f.configText === undefined ? `no ${f.configPath}: containerd's defaults` : f.configPath
  if (c.criDisabled) {
    return { check: CHECK, result: 'OK', detail: `CRI plugin disabled in ${f.configPath}: containerd sets up no pod network (ctr run --cni reads ${CONTAINERD_DEFAULT_BIN_DIR} and ${CONTAINERD_DEFAULT_CONF_DIR})` }
  }
  const needed = [...new Set([...(f.conflistPlugins ?? PODMESH_PLUGINS), ...CRI_EXTRA_PLUGINS])]
  const inBinDirs = new Set(c.binDirs.flatMap(d => [...(f.executables.get(d) ?? [])]))
  const lacking = needed.filter(p => !inBinDirs.has(p))
  const table = '[plugins."io.containerd.grpc.v1.cri".cni]'
  if (lacking.length > 0) {
    const debian = f.executables.get(DEBIAN_PLUGIN_DIR) ?? []
    const elsewhere = needed.every(p => debian.includes(p))
    const fix = elsewhere
      ? `set bin_dir = "${DEBIAN_PLUGIN_DIR}" under ${table} in ${f.configPath} and restart containerd, or link them: mkdir -p ${c.binDirs[0] as string} && ln -s ${DEBIAN_PLUGIN_DIR}/* ${c.binDirs[0] as string}/`
      : `apt install containernetworking-plugins, then set bin_dir = "${DEBIAN_PLUGIN_DIR}" under ${table} in ${f.configPath}`
    return { check: CHECK, result: 'FAIL', detail: `containerd looks for plugins in ${c.binDirs.join(', ')} (${source}), which lacks ${lacking.join(', ')}`, fix }
  }
  const ours = `${f.podmeshConfDir.replace(/\/+$/, '')}/${f.conflistFile}`
  const found = `plugins ${needed.join(', ')} in ${c.binDirs.join(', ')}`
  if (!f.confDirIsPodmesh) {
    return {
      check: CHECK,
      result: 'FAIL',
      detail: `containerd reads network configs from ${c.confDir} (${source}); podmeshd writes ${ours}`,
      fix: `set conf_dir = "${f.podmeshConfDir}" under ${table} in ${f.configPath} and restart containerd, or run podmeshd with --cni-conf-dir ${c.confDir}`
    }
  }
  const files = [...(f.confDirFiles ?? [])].filter(isNetConf).sort()
  if (!files.includes(f.conflistFile)) {
    return { check: CHECK, result: 'WARN', detail: `containerd reads ${c.confDir} (${source}), where podmeshd has not written ${f.conflistFile} yet; ${found}`, fix: 'start podmeshd (systemctl start podmeshd): it writes the conflist once it holds a subnet' }
  }
  // containerd's CRI plugin loads the first file in lexical order (max_conf_num = 1).
  if (files[0] !== f.conflistFile) {
    return { check: CHECK, result: 'WARN', detail: `containerd loads ${c.confDir}/${files[0] as string} first, not podmesh's ${f.conflistFile}`, fix: `remove ${c.confDir}/${files[0] as string}, or give it a name that sorts after ${f.conflistFile}` }
  }
  return { check: CHECK, result: 'OK', detail: `containerd reads ${c.confDir}/${f.conflistFile} (${source}); ${found}` }
}

// The CNI_* environment a runtime runs the plugin with (CNI SPEC 1.0, "Parameters"): which
// variables each command needs, and CNI_ARGS's `K=V;K=V` with the Kubernetes pod's namespace and
// name. A missing or malformed variable is a CNI error 4 naming it. Pure.
import { CNI_CODE, CniError } from './cni-error'
import { CONTAINER_ID_RULE, isContainerId } from '../service/names'
import { INTERFACE_NAME_RULE, isInterfaceName } from '../config/interface-name'

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION'
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'VERSION']

export interface CniEnv {
  command: CniCommand
  containerId: string
  /** Empty for DEL when the namespace is already gone. */
  netns: string
  ifname: string
  /** K8S_POD_NAMESPACE / K8S_POD_NAME from CNI_ARGS, when the runtime passed them. */
  podNamespace?: string
  podName?: string
}

/** A Kubernetes namespace or pod name as found in CNI_ARGS: a DNS subdomain (≤ 253). */
const POD_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/
export const isPodName = (s: string): boolean => POD_NAME.test(s)
export const POD_NAME_RULE = "lower-case letters, digits, '-' and '.', starting and ending alphanumeric, at most 253 characters"

const invalid = (variable: string, msg: string, value = ''): CniError =>
  new CniError(CNI_CODE.invalidEnvironment, `${variable}: ${msg}`, value)

/** CNI_ARGS: `K=V` pairs separated by ";" (libcni's format); a pair without "=" is refused. */
export function parseCniArgs (text: string): Map<string, string> {
  const out = new Map<string, string>()
  if (text === '') return out
  for (const pair of text.split(';')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    if (eq <= 0) throw invalid('CNI_ARGS', `"${pair}" is not KEY=VALUE`, text)
    out.set(pair.slice(0, eq), pair.slice(eq + 1))
  }
  return out
}

/** Reads and checks what `command` needs; VERSION needs nothing but CNI_COMMAND. */
export function parseCniEnv (env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = env.CNI_COMMAND ?? ''
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw invalid('CNI_COMMAND', command === '' ? 'not set' : `"${command}" is not one of ${COMMANDS.join(', ')}`, command)
  }
  const cmd = command as CniCommand
  const out: CniEnv = { command: cmd, containerId: '', netns: '', ifname: '' }
  if (cmd === 'VERSION') return out
  const need = (name: string): string => {
    const v = env[name]
    if (v === undefined || v === '') throw invalid(name, `not set (needed for ${cmd})`)
    return v
  }
  out.containerId = need('CNI_CONTAINERID')
  if (!isContainerId(out.containerId)) throw invalid('CNI_CONTAINERID', `"${out.containerId}" is not a container ID (${CONTAINER_ID_RULE})`, out.containerId)
  out.ifname = need('CNI_IFNAME')
  if (!isInterfaceName(out.ifname)) throw invalid('CNI_IFNAME', `"${out.ifname}" is not an interface name (${INTERFACE_NAME_RULE})`, out.ifname)
  // DEL must work after the namespace is gone, so CNI_NETNS may be empty then.
  out.netns = cmd === 'DEL' ? (env.CNI_NETNS ?? '') : need('CNI_NETNS')
  need('CNI_PATH')
  const args = parseCniArgs(env.CNI_ARGS ?? '')
  for (const [variable, field] of [['K8S_POD_NAMESPACE', 'podNamespace'], ['K8S_POD_NAME', 'podName']] as const) {
    const v = args.get(variable)
    if (v === undefined || v === '') continue
    if (!isPodName(v)) throw invalid('CNI_ARGS', `${variable} "${v}" is not a Kubernetes name (${POD_NAME_RULE})`, v)
    out[field] = v
  }
  return out
}

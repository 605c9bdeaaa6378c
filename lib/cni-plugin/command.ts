// One invocation of the podmesh CNI plugin, from its inputs (environment, stdin) to its outputs
// (stdout, exit code): ADD writes the pod's report to the spool and passes prevResult through,
// DEL removes it, CHECK compares it, VERSION lists the versions. Every refusal is the spec's
// error object on stdout with exit 1. The spool is injected (pod-spool.ts in production), so
// this file decides and the caller does the I/O.
import { CNI_CODE, CniError, isCniError } from './cni-error'
import { parseCniEnv, type CniEnv } from './env'
import { configVersion, parseNetConfig, type NetConfig } from './net-config'
import { podIps } from './pod-ips'
import { formatPodReport, isPodReportError, sameReport, type PodReport } from './pod-report'
import { allowsCheck, CURRENT_VERSION, versionResult } from './versions'

/** What the plugin needs of the spool. */
export interface SpoolAccess {
  write: (dir: string, report: PodReport) => void
  remove: (dir: string, id: string) => boolean
  read: (dir: string, id: string) => PodReport | undefined
}

export interface PluginOutput {
  stdout: string
  exitCode: 0 | 1
}

function reportOf (env: CniEnv, conf: NetConfig, prev: Record<string, unknown>): PodReport {
  const r: PodReport = { v: 1, id: env.containerId, ifname: env.ifname, ips: podIps(prev), labels: conf.labels, netns: env.netns }
  if (env.podNamespace !== undefined) r.namespace = env.podNamespace
  if (env.podName !== undefined) r.name = env.podName
  return r
}

function needPrevResult (env: CniEnv, conf: NetConfig): Record<string, unknown> {
  if (conf.prevResult === undefined) {
    throw new CniError(CNI_CODE.invalidNetworkConfig,
      `prevResult is missing: the podmesh plugin reports the addresses another plugin gave, so it must follow one in a conflist (${env.command})`)
  }
  return conf.prevResult
}

/** Spool failures: the node's disk or permissions, not the config. */
function spoolCall<T> (what: string, fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (isCniError(e)) throw e
    if (isPodReportError(e)) throw new CniError(CNI_CODE.reportMismatch, e.message, '', { cause: e })
    throw new CniError(CNI_CODE.ioFailure, `${what}: ${(e as Error).message}`, '', { cause: e })
  }
}

function execute (env: CniEnv, stdin: string, spool: SpoolAccess): string {
  if (env.command === 'VERSION') return JSON.stringify(versionResult())
  const conf = parseNetConfig(stdin, { forDel: env.command === 'DEL' })
  switch (env.command) {
    case 'ADD': {
      const prev = needPrevResult(env, conf)
      const report = reportOf(env, conf, prev)
      spoolCall('write the pod report', () => spool.write(conf.podDir, report))
      // A chained plugin's result is the previous one: podmesh adds no interface or address.
      return JSON.stringify(prev)
    }
    case 'DEL':
      spoolCall('remove the pod report', () => spool.remove(conf.podDir, env.containerId))
      return ''
    case 'CHECK': {
      if (!allowsCheck(conf.cniVersion)) throw new CniError(CNI_CODE.incompatibleVersion, `cniVersion ${conf.cniVersion} has no CHECK (0.4.0 and later)`, conf.cniVersion)
      const want = reportOf(env, conf, needPrevResult(env, conf))
      const have = spoolCall('read the pod report', () => spool.read(conf.podDir, env.containerId))
      if (have === undefined) throw new CniError(CNI_CODE.reportMismatch, `no report for container ${env.containerId} in ${conf.podDir}`)
      if (!sameReport(have, want)) {
        throw new CniError(CNI_CODE.reportMismatch, `the report of container ${env.containerId} in ${conf.podDir} differs from the pod`,
          `have ${formatPodReport(have).trim()}, want ${formatPodReport(want).trim()}`)
      }
      return ''
    }
  }
}

/** Runs one command; never throws for a CNI refusal (it becomes the error object). */
export function runPlugin (env: Readonly<Record<string, string | undefined>>, stdin: string, spool: SpoolAccess): PluginOutput {
  try {
    return { stdout: execute(parseCniEnv(env), stdin, spool), exitCode: 0 }
  } catch (e) {
    const err = isCniError(e) ? e : new CniError(CNI_CODE.ioFailure, `podmesh: ${(e as Error)?.message ?? String(e)}`, '', { cause: e })
    return { stdout: JSON.stringify(err.toResult(configVersion(stdin) ?? CURRENT_VERSION)), exitCode: 1 }
  }
}

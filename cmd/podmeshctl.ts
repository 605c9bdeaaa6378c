#!/usr/bin/env node
// podmeshctl: the operator's CLI. Parses argv (util.parseArgs) and the PODMESH_* environment,
// calls one lib/ctl subcommand, prints its output. Exit codes: 0 ok, 1 failed, 2 bad usage.
import { parseArgs } from 'node:util'
import type { EtcdOptions } from '../lib/config/etcd-options'
import { etcdOptionsOfFlags, globalFlagsHelp, globalOptions } from '../lib/ctl/global-flags'
import { isConfigError } from '../lib/config/config-error'
import { connectStore, isStoreError, type StoreClient } from '../lib/store/client'
import { isConfigStoreError } from '../lib/store/config-store'
import { isKeyError } from '../lib/store/keys'
import { initConfig, initHelp, initOptions, runInit } from '../lib/ctl/init'
import { networkConfigWarnings } from '../lib/config/network-parse'
import { configShowHelp, runConfigShow } from '../lib/ctl/config-show'
import { nodeRemoveHelp, runNodeRemove } from '../lib/ctl/node-remove'
import { isNodeNotFound } from '../lib/ctl/node-not-found'
import type { OutputFormat } from '../lib/ctl/output'
import { nodesHelp, runNodes } from '../lib/ctl/nodes'
import { runStatus, statusHelp, statusOptions } from '../lib/ctl/status'
import { watchStatus } from '../lib/ctl/status-watch'
import { runTopology, topologyHelp } from '../lib/ctl/topology'
import { DIFF_FLAGS, diffHelp, diffOptions, runDiff } from '../lib/ctl/diff'
import { CONTAINERD_CONFIG_FLAG, DOCTOR_FLAGS, doctorHelp, doctorOptions, runDoctor } from '../lib/ctl/doctor'
import { NODE_FLAGS } from '../lib/config/node-flags'
import { nodeFlagValues } from '../lib/ctl/node-flags'
import { authEnableHelp, nodeCredentialsHelp, runAuthEnable, runNodeCredentials } from '../lib/ctl/auth'
import { isStatusValueError } from '../lib/store/status-value'
import { endpointsHelp, runEndpoints } from '../lib/ctl/endpoints'
import { isServiceValueError } from '../lib/service/service-value'
import { isServiceStoreError } from '../lib/store/service-store-error'
import { runServiceAdd, serviceAddHelp, serviceAddOptions, serviceAddRequest } from '../lib/ctl/service-add'
import { runServiceList, serviceListHelp } from '../lib/ctl/service-list'
import { runServiceShow, serviceShowHelp } from '../lib/ctl/service-show'
import { runServiceRemove, serviceRemoveHelp } from '../lib/ctl/service-remove'

const HELP = `usage: podmeshctl [global flags] <command>

commands:
  ${initHelp.trimEnd().replace(/\n/g, '\n  ')}
  ${configShowHelp.trimEnd()}
  ${nodeRemoveHelp.trimEnd()}
  ${nodeCredentialsHelp.trimEnd()}
  ${authEnableHelp.trimEnd()}
  ${nodesHelp.trimEnd()}
  ${statusHelp.trimEnd().replace(/\n/g, '\n  ')}
  ${topologyHelp.trimEnd()}
  ${diffHelp.trimEnd().replace(/\n/g, '\n  ')}
  ${doctorHelp.trimEnd().replace(/\n/g, '\n  ')}
  ${endpointsHelp.trimEnd()}
  ${serviceAddHelp.trimEnd().replace(/\n/g, '\n  ')}
  ${serviceListHelp.trimEnd()}
  ${serviceShowHelp.trimEnd()}
  ${serviceRemoveHelp.trimEnd()}

${globalFlagsHelp()}`

class UsageError extends Error {}

type Values = Record<string, string | boolean | string[] | undefined>

/** The subcommand words, found with a lenient pass (flags with values are known to parseArgs). */
function commandOf (argv: string[]): string[] {
  const { positionals } = parseArgs({ args: argv, options: { ...globalOptions, ...initOptions, ...diffOptions, ...doctorOptions, ...statusOptions, ...serviceAddOptions }, strict: false, allowPositionals: true })
  return positionals
}

function strictParse (argv: string[], extra: Record<string, { type: 'string' | 'boolean', multiple?: boolean }>): { values: Values, positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options: { ...globalOptions, ...extra }, strict: true, allowPositionals: true })
    return { values: r.values as Values, positionals: r.positionals }
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
}

/** A subcommand's output, with its exit code when it reports a finding (diff, doctor). */
type Action = (client: StoreClient, prefix: string) => Promise<string | { text: string, exitCode: number }>

/** Commands that are one word (the rest take a sub-verb: config show, node remove). */
const ONE_WORD = new Set(['init', 'nodes', 'status', 'topology', 'diff', 'doctor', 'endpoints'])

/** Everything that can be checked without etcd; a ConfigError here is bad usage (exit 2). */
function plan (argv: string[], words: string[]): { action: Action, etcd: EtcdOptions } {
  const cmd = words.slice(0, ONE_WORD.has(words[0] ?? '') ? 1 : 2).join(' ')
  const extra = cmd === 'init' ? initOptions : cmd === 'diff' ? diffOptions : cmd === 'doctor' ? doctorOptions : cmd === 'status' ? statusOptions : cmd === 'service add' ? serviceAddOptions : {}
  const { values, positionals } = strictParse(argv, extra)
  const output = (values.output ?? 'table') as string
  if (cmd === 'topology') {
    if (output !== 'json' && output !== 'table' && output !== 'dot') throw new UsageError(`-o/--output must be dot, json or table, got "${output}"`)
  } else if (output !== 'json' && output !== 'table') throw new UsageError(`-o/--output must be json or table, got "${output}"`)
  const format = output as OutputFormat
  // Resolved before the command: init checks its pod ranges against the etcd endpoints.
  const etcd = etcdOptionsOfFlags(values, process.env)
  const etcdOf = (): EtcdOptions => etcd

  let action: Action
  if (cmd === 'init') {
    if (positionals.length > 1) throw new UsageError(`init takes no arguments, got "${positionals.slice(1).join(' ')}"`)
    const flags: Record<string, string | boolean | string[]> = {}
    for (const k of Object.keys(initOptions)) if (values[k] !== undefined && k !== 'force') flags[k] = values[k] as string | boolean | string[]
    const config = initConfig(flags, { force: values.force === true, etcdEndpoints: etcd.endpoints })
    action = async (client, prefix) => {
      for (const w of networkConfigWarnings(config)) process.stderr.write(`podmeshctl: warning: ${w}\n`)
      return await runInit(client, prefix, config, values.force === true, format)
    }
  } else if (cmd === 'config show') {
    if (positionals.length > 2) throw new UsageError('config show takes no arguments')
    action = async (client, prefix) => await runConfigShow(client, prefix, format)
  } else if (cmd === 'node remove') {
    const name = positionals[2]
    if (name === undefined || positionals.length > 3) throw new UsageError('usage: podmeshctl node remove <name>')
    action = async (client, prefix) => await runNodeRemove(client, prefix, name, format)
  } else if (cmd === 'node credentials') {
    const name = positionals[2]
    if (name === undefined || positionals.length > 3) throw new UsageError('usage: podmeshctl node credentials <name>')
    action = async (client, prefix) => await runNodeCredentials(client, prefix, name, format)
  } else if (cmd === 'auth enable') {
    if (positionals.length > 2) throw new UsageError('auth enable takes no arguments')
    action = async (client, prefix) => await runAuthEnable(client, prefix, format)
  } else if (cmd === 'nodes') {
    if (positionals.length > 1) throw new UsageError('nodes takes no arguments')
    action = async (client, prefix) => await runNodes(client, prefix, format)
  } else if (cmd === 'status') {
    if (positionals.length > 2) throw new UsageError('usage: podmeshctl status [node] [-w]')
    const only = positionals[1]
    action = values.watch === true
      ? async (client, prefix) => { await watchUntilSignalled(client, prefix, format, only); return '' }
      : async (client, prefix) => await runStatus(client, prefix, format, only)
  } else if (cmd === 'topology') {
    if (positionals.length > 1) throw new UsageError('topology takes no arguments')
    action = async (client, prefix) => await runTopology(client, prefix, output as 'dot' | 'json' | 'table')
  } else if (cmd === 'diff') {
    if (positionals.length > 2) throw new UsageError('usage: podmeshctl diff [node]')
    const node = positionals[1]
    const devices = nodeFlagValues(DIFF_FLAGS, values, process.env)
    action = async (client, prefix) => await runDiff(client, prefix, format, { ...(node !== undefined ? { node } : {}), ...devices })
  } else if (cmd === 'doctor') {
    if (positionals.length > 1) throw new UsageError('doctor takes no arguments')
    const node = nodeFlagValues(DOCTOR_FLAGS, values, process.env)
    const flag = values[CONTAINERD_CONFIG_FLAG.flag]
    const runtime = {
      containerdConfig: typeof flag === 'string' ? flag : process.env[CONTAINERD_CONFIG_FLAG.env] ?? CONTAINERD_CONFIG_FLAG.default,
      cniConfDir: node.cniConfDir ?? NODE_FLAGS.cniConfDir.default,
      cniNetwork: node.cniNetwork ?? NODE_FLAGS.cniNetwork.default
    }
    action = async (client, prefix) => await runDoctor(client, prefix, format, etcdOf(), {
      ...(node.publicAddress !== undefined ? { address: node.publicAddress } : {}),
      ...(node.publicInterface !== undefined ? { interface: node.publicInterface } : {})
    }, runtime)
  } else if (cmd === 'endpoints') {
    const name = positionals[1]
    if (name === undefined || positionals.length > 2) throw new UsageError('usage: podmeshctl endpoints <service>')
    action = async (client, prefix) => await runEndpoints(client, prefix, name, format, line => process.stderr.write(`podmeshctl: warning: ${line}\n`))
  } else if (cmd === 'service add') {
    if (positionals.length > 3) throw new UsageError(`service add takes one name, got "${positionals.slice(2).join(' ')}"`)
    const request = serviceAddRequest(positionals[2], values)
    action = async (client, prefix) => await runServiceAdd(client, prefix, request, format)
  } else if (cmd === 'service list') {
    if (positionals.length > 2) throw new UsageError('service list takes no arguments')
    action = async (client, prefix) => await runServiceList(client, prefix, format)
  } else if (cmd === 'service show' || cmd === 'service remove') {
    const name = positionals[2]
    if (name === undefined || positionals.length > 3) throw new UsageError(`usage: podmeshctl ${cmd} NAME`)
    action = cmd === 'service show'
      ? async (client, prefix) => await runServiceShow(client, prefix, name, format)
      : async (client, prefix) => await runServiceRemove(client, prefix, name, format)
  } else {
    throw new UsageError(`unknown command "${words.join(' ')}" (commands: init, config show, node remove, node credentials, auth enable, nodes, status, topology, diff, doctor, service add, service list, service show, service remove, endpoints)`)
  }
  return { action, etcd }
}

/** `status -w` until SIGINT or SIGTERM (then it resolves: exit 0); an etcd failure rejects. */
async function watchUntilSignalled (client: StoreClient, prefix: string, format: OutputFormat, only: string | undefined): Promise<void> {
  const ended = new AbortController()
  const end = (): void => ended.abort()
  process.once('SIGINT', end)
  process.once('SIGTERM', end)
  try {
    await watchStatus({ client, prefix, format, ...(only !== undefined ? { only } : {}), signal: ended.signal, tty: process.stdout.isTTY === true, write: text => process.stdout.write(text) })
  } finally {
    process.off('SIGINT', end)
    process.off('SIGTERM', end)
  }
}

async function main (argv: string[]): Promise<number> {
  const words = commandOf(argv)
  const help = argv.includes('--help') || argv.includes('-h')
  if (words.length === 0 || help) {
    ;(help ? process.stdout : process.stderr).write(HELP)
    return help ? 0 : 2
  }
  let planned
  try {
    planned = plan(argv, words)
  } catch (e) {
    if (isConfigError(e)) throw new UsageError(e.message)
    throw e
  }
  const client = await connectStore(planned.etcd)
  try {
    const out = await planned.action(client, planned.etcd.prefix)
    if (typeof out === 'string') { process.stdout.write(out); return 0 }
    process.stdout.write(out.text)
    return out.exitCode
  } finally {
    client.close()
  }
}

main(process.argv.slice(2)).then(code => process.exit(code), (e: unknown) => {
  const msg = e instanceof Error ? e.message : String(e)
  if (e instanceof UsageError) {
    process.stderr.write(`podmeshctl: ${msg}\n(see podmeshctl --help)\n`)
    process.exit(2)
  }
  if (isConfigError(e) || isConfigStoreError(e) || isStoreError(e) || isNodeNotFound(e) || isKeyError(e) || isStatusValueError(e) || isServiceValueError(e) || isServiceStoreError(e)) {
    process.stderr.write(`podmeshctl: ${msg}\n`)
    process.exit(1)
  }
  process.stderr.write(`podmeshctl: ${e instanceof Error ? e.stack ?? msg : msg}\n`)
  process.exit(1)
})

// The network config in etcd (<prefix>config): read and validate it, write it once (podmeshctl
// init). Overwriting needs `force`, because every node's subnets and tunnels derive from it.
import type { NetworkConfig } from '../config/network'
import { parseNetworkConfig, parseNetworkConfigJson } from '../config/network-parse'
import { type StoreClient, storeCall } from './client'
import { configKey, nodesPrefix, prefixEnd } from './keys'
import { servicesPrefix } from './service-keys'

export type ConfigStoreProblem = 'missing' | 'exists'

export class ConfigStoreError extends Error {
  readonly code = 'ECONFIGSTORE'
  readonly problem: ConfigStoreProblem
  readonly key: string
  constructor (key: string, problem: ConfigStoreProblem, message: string) {
    super(`${key}: ${message}`)
    this.name = 'ConfigStoreError'
    this.key = key
    this.problem = problem
  }
}
export const isConfigStoreError = (e: unknown): e is ConfigStoreError => e instanceof ConfigStoreError
/** The config key is absent: the cluster was never initialised (run podmeshctl init). */
export const isConfigMissing = (e: unknown): boolean => isConfigStoreError(e) && e.problem === 'missing'

/** Reads and validates the config; ConfigStoreError 'missing' if absent, ConfigError if invalid. */
export async function readConfig (client: StoreClient, prefix: string): Promise<NetworkConfig> {
  return (await readConfigRevision(client, prefix)).config
}

/**
 * The config and its revision (the etcd mod revision of the config key): the identity of one
 * config, published by each node in its status so that two configs in one cluster show.
 */
export async function readConfigRevision (client: StoreClient, prefix: string): Promise<{ config: NetworkConfig, revision: string }> {
  const key = configKey(prefix)
  const res = await storeCall(`get ${key}`, async () => await client.get(key).exec())
  const kv = res.kvs[0]
  if (kv === undefined) {
    throw new ConfigStoreError(key, 'missing', 'no network config; initialise the cluster with `podmeshctl init`')
  }
  return { config: parseNetworkConfigJson(kv.value.toString()), revision: kv.mod_revision }
}

export interface WriteConfigResult {
  /** False when an existing config was replaced. */
  created: boolean
  revision: string
  config: NetworkConfig
}

/** What an overwrite would change, in words, for the refusal message. */
function describeChange (old: string, next: NetworkConfig, nodes: number, services: number): string {
  let prev: NetworkConfig | undefined
  try { prev = parseNetworkConfigJson(old) } catch {}
  const notes: string[] = []
  if (prev !== undefined && prev.backend.type !== next.backend.type) {
    notes.push(`it would change the backend from ${prev.backend.type} to ${next.backend.type} while ${nodes} node record(s) exist; ` +
      'running nodes keep their tunnels until restarted')
  }
  if (prev !== undefined && (prev.ipv4?.cidr !== next.ipv4?.cidr || prev.ipv6?.cidr !== next.ipv6?.cidr ||
      prev.ipv4?.subnetLen !== next.ipv4?.subnetLen || prev.ipv6?.subnetLen !== next.ipv6?.subnetLen) && nodes > 0) {
    notes.push(`it would change the pod ranges while ${nodes} node record(s) hold subnets of the old ones`)
  }
  const ranges = (c: NetworkConfig | undefined): string => JSON.stringify([c?.services?.ipv4, c?.services?.ipv6, c?.services?.nodePortRange])
  if (prev !== undefined && services > 0 && ranges(prev) !== ranges(next)) {
    notes.push(`it would change the service ranges while ${services} service(s) hold cluster IPs and node ports of the old ones`)
  }
  return notes.length > 0 ? `; ${notes.join('; ')}` : ''
}

/**
 * Writes the config (validated and normalised first). Refuses to replace an existing one unless
 * `force`; the refusal says what would change (backend type, pod ranges) and how many nodes exist.
 */
export async function writeConfig (client: StoreClient, prefix: string, config: NetworkConfig, opts: { force?: boolean } = {}): Promise<WriteConfigResult> {
  const normalised = parseNetworkConfig(config)
  const key = configKey(prefix)
  const np = nodesPrefix(prefix)
  const sp = servicesPrefix(prefix)
  for (let attempt = 0; ; attempt++) {
    const read = await storeCall(`read ${key}`, async () => await client.kv.txn({
      compare: [],
      success: [
        { request_range: { key: Buffer.from(key) } },
        { request_range: { key: Buffer.from(np), range_end: prefixEnd(np), count_only: true } },
        { request_range: { key: Buffer.from(sp), range_end: prefixEnd(sp), count_only: true } }
      ],
      failure: []
    }))
    const existing = read.responses[0]?.response_range.kvs[0]
    const nodes = Number(read.responses[1]?.response_range.count ?? '0')
    const services = Number(read.responses[2]?.response_range.count ?? '0')
    if (existing !== undefined && opts.force !== true) {
      throw new ConfigStoreError(key, 'exists',
        `a network config already exists${describeChange(existing.value.toString(), normalised, nodes, services)}; use --force to overwrite it`)
    }
    const res = await storeCall(`write ${key}`, async () => await client.kv.txn({
      compare: [existing === undefined
        ? { key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }
        : { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: existing.mod_revision }],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify(normalised)) } }],
      failure: []
    }))
    if (res.succeeded) return { created: existing === undefined, revision: res.header.revision, config: normalised }
    // Someone wrote the config between our read and write: read again (and refuse, without force).
    if (attempt >= 5) throw new ConfigStoreError(key, 'exists', 'the config kept changing while writing it; try again')
  }
}

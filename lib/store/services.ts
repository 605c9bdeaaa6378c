// Services in etcd: add (validate, allocate cluster IPs and NodePorts, claim them and write the
// service in one transaction) and remove; reading them is service-read.ts's. Race-free like
// subnet leases: every claim key (serviceips/<ip>, nodeports/<protocol>-<port>) and
// services/<name> are created together by a transaction that succeeds only if none exists; a
// lost race re-reads and chooses again, a bounded number of times. Allocation policy:
// service-pick.ts; key layout: service-keys.ts; the value written: service-value.ts.
import type { ICompare, IKeyValue, IRequestOp } from 'etcd3'
import type { ServiceRanges } from '../config/network'
import { type Family, formatIp, parseIp } from '../ipam/cidr'
import type { Protocol, ServicePort, ServiceSpec } from '../service/types'
import { type StoreClient, storeCall } from './client'
import { readConfig } from './config-store'
import { prefixEnd } from './keys'
import { SERVICE_NAME_RULE, isServiceName } from '../service/names'
import { serviceValueText } from '../service/service-value'
import {
  formatServiceClaim, nodePortKey, nodePortsPrefix, parseServiceClaim, serviceIpKey, serviceIpsPrefix, serviceKey
} from './service-keys'
import { serviceNotFound } from './service-read'
import { type RandomBelow, type UsableRange, outOfRange, pickAddress, pickPort, randomBelow, usableRange, usableText } from './service-pick'
import { type AddServiceRequest, type CheckedRequest, checkServiceRequest } from './service-request'
import { ServiceStoreError } from './service-store-error'

export type { AddServiceRequest } from './service-request'
export { ServiceStoreError, isServiceStoreError, type ServiceStoreProblem } from './service-store-error'

export interface AddServiceOptions {
  random?: RandomBelow
  /** Transactions tried before giving up with 'conflict'. Default 20. */
  attempts?: number
}

/** Holder of a claim whose value cannot be read: nobody may take it, and we cannot name anyone. */
const UNKNOWN_HOLDER = '(unreadable claim)'

const range = (p: string): IRequestOp => ({ request_range: { key: Buffer.from(p), range_end: prefixEnd(p) } })
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

interface Taken {
  /** Canonical IP text → holding service. */
  ips: Map<string, string>
  /** "<protocol>-<port>" → holding service. */
  ports: Map<string, string>
}

function takenOf (prefix: string, ipKvs: readonly IKeyValue[], portKvs: readonly IKeyValue[]): Taken {
  const ips = new Map<string, string>()
  const ipDir = serviceIpsPrefix(prefix)
  for (const kv of ipKvs) {
    const suffix = kv.key.toString().slice(ipDir.length)
    // A key that is not a canonical IP claims nothing we would ever write; skip it.
    try {
      const ip = parseIp(suffix)
      ips.set(formatIp(ip.family, ip.addr), parseServiceClaim(kv.value.toString()) ?? UNKNOWN_HOLDER)
    } catch {}
  }
  const ports = new Map<string, string>()
  const portDir = nodePortsPrefix(prefix)
  for (const kv of portKvs) ports.set(kv.key.toString().slice(portDir.length), parseServiceClaim(kv.value.toString()) ?? UNKNOWN_HOLDER)
  return { ips, ports }
}

/** One cluster IP per family with a service range (IPv4 first): the requested one, checked, or a free one. */
function chooseIPs (req: CheckedRequest, ranges: ServiceRanges, taken: Taken, random: RandomBelow): string[] {
  const families: Array<[Family, string]> = []
  if (ranges.ipv4 !== undefined) families.push([4, ranges.ipv4])
  if (ranges.ipv6 !== undefined) families.push([6, ranges.ipv6])
  for (const [family, ip] of req.clusterIPs) {
    if (!families.some(([f]) => f === family)) {
      throw new ServiceStoreError(req.name, 'no-service-range', `cluster IP ${ip.text}: the cluster has no IPv${family} service range`)
    }
  }
  return families.map(([family, cidr]) => {
    const r: UsableRange = usableRange(cidr)
    const want = req.clusterIPs.get(family)
    if (want !== undefined) {
      const why = outOfRange(r, want.addr)
      if (why !== undefined) {
        const detail = why === 'outside' ? 'outside' : `${why} of`
        throw new ServiceStoreError(req.name, 'ip-out-of-range',
          `cluster IP ${want.text} is ${detail} the service range ${cidr} (usable: ${usableText(r)})`)
      }
      const holder = taken.ips.get(want.text)
      if (holder !== undefined) {
        throw new ServiceStoreError(req.name, 'ip-taken', `cluster IP ${want.text} is taken by service "${holder}"`, { holder })
      }
      return want.text
    }
    const inFamily = new Set<bigint>()
    for (const text of taken.ips.keys()) {
      const ip = parseIp(text)
      if (ip.family === family) inFamily.add(ip.addr)
    }
    const addr = pickAddress(r, inFamily, random)
    if (addr === undefined) {
      throw new ServiceStoreError(req.name, 'ip-exhausted', `no free cluster IP in the service range ${cidr}: all ${r.last - r.first + 1n} usable addresses are taken`)
    }
    return formatIp(family, addr)
  })
}

/** The ports with every NodePort filled in: the requested ones checked, the rest chosen per protocol. */
function choosePorts (req: CheckedRequest, ranges: ServiceRanges, taken: Taken, random: RandomBelow): ServicePort[] {
  if (req.type !== 'NodePort') return req.ports
  const { min, max } = ranges.nodePortRange
  const mine = new Set<string>()
  for (const p of req.ports) {
    if (p.nodePort === undefined) continue
    const k = `${p.protocol}-${p.nodePort}`
    if (p.nodePort < min || p.nodePort > max) {
      throw new ServiceStoreError(req.name, 'port-out-of-range', `node port ${p.nodePort}/${p.protocol} is outside the NodePort range ${min}-${max}`)
    }
    const holder = taken.ports.get(k)
    if (holder !== undefined) {
      throw new ServiceStoreError(req.name, 'port-taken', `node port ${p.nodePort}/${p.protocol} is taken by service "${holder}"`, { holder })
    }
    mine.add(k)
  }
  return req.ports.map(p => {
    if (p.nodePort !== undefined) return p
    const used = new Set<number>()
    const add = (k: string): void => {
      const dash = k.lastIndexOf('-')
      if (k.slice(0, dash) === p.protocol) used.add(Number(k.slice(dash + 1)))
    }
    for (const k of taken.ports.keys()) add(k)
    for (const k of mine) add(k)
    const port = pickPort(min, max, used, random)
    if (port === undefined) {
      throw new ServiceStoreError(req.name, 'port-exhausted', `no free ${p.protocol} node port in the NodePort range ${min}-${max}`)
    }
    mine.add(`${p.protocol}-${port}`)
    return { ...p, nodePort: port }
  })
}

/**
 * Adds a service: checks the request (ServiceStoreError 'invalid'), reads the config's service
 * ranges ('no-service-range' without them), chooses cluster IPs and NodePorts, and creates
 * services/<name> with every claim key in one transaction. Returns the service as stored.
 */
export async function addService (client: StoreClient, prefix: string, request: AddServiceRequest, opts: AddServiceOptions = {}): Promise<ServiceSpec> {
  const req = checkServiceRequest(request)
  const random = opts.random ?? randomBelow
  const attempts = opts.attempts ?? 20
  const config = await readConfig(client, prefix)
  const ranges = config.services
  if (ranges === undefined) {
    throw new ServiceStoreError(req.name, 'no-service-range', 'the cluster has no service ranges; add them to the network config (podmeshctl init --service-cidr CIDR --force)')
  }
  const key = serviceKey(prefix, req.name)
  for (let attempt = 0; attempt < attempts; attempt++) {
    const read = await storeCall(`read for service ${req.name}`, async () => await client.kv.txn({
      compare: [],
      success: [{ request_range: { key: Buffer.from(key) } }, range(serviceIpsPrefix(prefix)), range(nodePortsPrefix(prefix))],
      failure: []
    }))
    if ((read.responses[0]?.response_range.kvs.length ?? 0) > 0) {
      throw new ServiceStoreError(req.name, 'exists', `service "${req.name}" already exists`)
    }
    const taken = takenOf(prefix, read.responses[1]?.response_range.kvs ?? [], read.responses[2]?.response_range.kvs ?? [])
    const spec: ServiceSpec = {
      v: 1,
      name: req.name,
      type: req.type,
      clusterIPs: chooseIPs(req, ranges, taken, random),
      ports: choosePorts(req, ranges, taken, random),
      selector: req.selector,
      sessionAffinity: req.sessionAffinity,
      ...(req.affinityTimeoutSeconds !== undefined ? { affinityTimeoutSeconds: req.affinityTimeoutSeconds } : {}),
      externalTrafficPolicy: req.externalTrafficPolicy
    }
    const claim = formatServiceClaim(req.name)
    const claims = [
      ...spec.clusterIPs.map(ip => serviceIpKey(prefix, ip)),
      ...spec.ports.flatMap(p => p.nodePort === undefined ? [] : [nodePortKey(prefix, p.protocol as Protocol, p.nodePort)])
    ]
    const compare: ICompare[] = [key, ...claims].map(k => ({ key: Buffer.from(k), target: 'Create', result: 'Equal', create_revision: 0 }))
    const success: IRequestOp[] = [
      { request_put: { key: Buffer.from(key), value: Buffer.from(serviceValueText(spec)) } },
      ...claims.map(k => ({ request_put: { key: Buffer.from(k), value: Buffer.from(claim) } }))
    ]
    const res = await storeCall(`add service ${req.name}`, async () => await client.kv.txn({ compare, success, failure: [] }))
    if (res.succeeded) return spec
    // Someone claimed one of ours in between: read again after a short random pause, so that the
    // racers spread out instead of colliding again in lockstep.
    await sleep(Number(random(BigInt(5 + 5 * attempt))))
  }
  throw new ServiceStoreError(req.name, 'conflict', `service "${req.name}": its cluster IPs or node ports kept being taken by concurrent adds (${attempts} tries); try again`)
}

export interface RemovedService {
  name: string
  /** Whether services/<name> was deleted. */
  service: boolean
  /** The serviceips/ and nodeports/ keys (suffixes) deleted with it. */
  claims: string[]
}

function checkName (name: string): void {
  if (!isServiceName(name)) throw new ServiceStoreError(name, 'invalid', `"${name}" is not a valid service name (${SERVICE_NAME_RULE})`)
}

/**
 * Deletes services/<name> and every serviceips/ and nodeports/ key whose value names it, in one
 * transaction that holds only if none of them changed since read (a claim is compared by value:
 * it must still name this service). 'not-found' when there is nothing to delete.
 */
export async function removeService (client: StoreClient, prefix: string, name: string): Promise<RemovedService> {
  checkName(name)
  const key = serviceKey(prefix, name)
  for (let attempt = 0; ; attempt++) {
    const read = await storeCall(`read service ${name}`, async () => await client.kv.txn({
      compare: [],
      success: [{ request_range: { key: Buffer.from(key) } }, range(serviceIpsPrefix(prefix)), range(nodePortsPrefix(prefix))],
      failure: []
    }))
    const service = read.responses[0]?.response_range.kvs[0]
    const claims = [...read.responses[1]?.response_range.kvs ?? [], ...read.responses[2]?.response_range.kvs ?? []]
      .filter(kv => parseServiceClaim(kv.value.toString()) === name)
    if (service === undefined && claims.length === 0) {
      throw serviceNotFound(name, prefix)
    }
    const compare: ICompare[] = [
      service === undefined
        ? { key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }
        : { key: Buffer.from(key), target: 'Mod', result: 'Equal', mod_revision: service.mod_revision },
      ...claims.map((kv): ICompare => ({ key: kv.key, target: 'Value', result: 'Equal', value: kv.value }))
    ]
    const success: IRequestOp[] = [key, ...claims.map(kv => kv.key.toString())].map(k => ({ request_delete_range: { key: Buffer.from(k) } }))
    const res = await storeCall(`remove service ${name}`, async () => await client.kv.txn({ compare, success, failure: [] }))
    if (res.succeeded) {
      const dir = (k: string): string => k.startsWith(serviceIpsPrefix(prefix)) ? k.slice(serviceIpsPrefix(prefix).length) : k.slice(nodePortsPrefix(prefix).length)
      return { name, service: service !== undefined, claims: claims.map(kv => dir(kv.key.toString())) }
    }
    if (attempt >= 10) throw new ServiceStoreError(name, 'conflict', `service "${name}": its keys kept changing while removing them; try again`)
  }
}

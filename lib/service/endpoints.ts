// The endpoints of each service: one per address of every pod whose labels its selector
// matches, marked local when the pod runs on this node (NodePort with externalTrafficPolicy
// Local answers only from those). Deterministic order (pod node, container ID, address family
// and value), so an unchanged cluster gives the same rules and the same output every time.
// Pods are indexed by label pair, so a service looks only at the pods carrying its rarest pair:
// 10,000 services over 100,000 pods is not 10^9 selector tests.
// Pure: podmeshd and `podmeshctl endpoints` resolve with the same code.

import { parseIp } from '../ipam/cidr'
import { selects } from './selector'
import type { Endpoint, PodRecord, ServiceSpec } from './types'

interface Candidate { pod: PodRecord, ip: string, family: number, addr: bigint }

const compare = (a: Candidate, b: Candidate): number =>
  a.pod.node < b.pod.node ? -1 : a.pod.node > b.pod.node ? 1
    : a.pod.id < b.pod.id ? -1 : a.pod.id > b.pod.id ? 1
      : a.family - b.family || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0)

/**
 * Endpoints by service name. An address that two pods report (a stale record beside its
 * successor, or a hostile one) is one endpoint, the first pod's in this order: a duplicate
 * would double that address's share of the random choice.
 */
export function resolveEndpoints (services: Iterable<ServiceSpec>, pods: Iterable<PodRecord>, self: string): Map<string, Endpoint[]> {
  const candidates: Candidate[] = []
  for (const pod of pods) {
    for (const ip of pod.ips) {
      const { family, addr } = parseIp(ip)
      candidates.push({ pod, ip, family, addr })
    }
  }
  candidates.sort(compare)
  // Each bucket keeps the sorted order.
  const byPair = new Map<string, Candidate[]>()
  for (const c of candidates) {
    for (const [k, v] of Object.entries(c.pod.labels)) {
      const pair = `${k}=${v}`
      let bucket = byPair.get(pair)
      if (bucket === undefined) byPair.set(pair, bucket = [])
      bucket.push(c)
    }
  }
  const out = new Map<string, Endpoint[]>()
  for (const svc of services) {
    const seen = new Set<string>()
    const endpoints: Endpoint[] = []
    let rarest: Candidate[] | undefined
    for (const [k, v] of Object.entries(svc.selector)) {
      const bucket = byPair.get(`${k}=${v}`) ?? []
      if (rarest === undefined || bucket.length < rarest.length) rarest = bucket
    }
    // No selector: no endpoints (selects() says the same).
    for (const c of rarest ?? []) {
      if (seen.has(c.ip) || !selects(svc.selector, c.pod.labels)) continue
      seen.add(c.ip)
      endpoints.push({ ip: c.ip, node: c.pod.node, pod: c.pod.id, local: c.pod.node === self })
    }
    out.set(svc.name, endpoints)
  }
  return out
}

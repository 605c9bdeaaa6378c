// One service's part of the table (rules.ts has the model): a pure function of the service, its
// endpoints and the node's name, so that ruleset.ts can keep the part of every service that did
// not change and recompute only the others. A full build runs this for every service, so it
// allocates little: the objects that every service shares (pick chains, verdicts, empty records)
// are made once.

import {
  DEFAULT_AFFINITY_TIMEOUT_S, FAMILIES, affinitySetName, endpointMapName, familyOf, familyTag,
  nodePortChainName, pickChainName, serviceChainName,
  type AffinitySet, type EndpointMapName, type EndpointSlots, type Family, type MapElement, type MapName,
  type PickChain, type PickKind, type Rule, type ServiceRules, type Verdict
} from './rules'
import type { Endpoint, ServicePort, ServiceSpec } from './types'

interface Builder {
  chains: Record<string, readonly Rule[]> | undefined
  picks: Record<string, PickChain> | undefined
  sets: Record<string, AffinitySet> | undefined
  maps: Partial<Record<MapName, MapElement[]>>
  endpoints: Partial<Record<EndpointMapName, EndpointSlots[]>>
}

const NONE: Readonly<Record<string, never>> = Object.freeze({})
const REJECT: Verdict = 'reject'

/** Pick chains and the verdicts that go to them, one object each however many services use them. */
const picks = new Map<string, { chain: PickChain, verdict: Verdict }>()
function pick (b: Builder, kind: PickKind, p: ServicePort, f: Family, count: number): Verdict {
  const name = pickChainName(kind, p.protocol, f, count)
  let known = picks.get(name)
  if (known === undefined) {
    known = { chain: { kind, protocol: p.protocol, family: f, count }, verdict: { goto: name } }
    picks.set(name, known)
  }
  (b.picks ??= {})[name] = known.chain
  return known.verdict
}

const add = (b: Builder, map: MapName, e: MapElement): void => { (b.maps[map] ??= []).push(e) }

function addSlots (b: Builder, map: EndpointMapName, at: { ip?: string, protocol: ServicePort['protocol'], port: number }, targetPort: number, endpoints: readonly string[]): void {
  (b.endpoints[map] ??= []).push(at.ip === undefined
    ? { protocol: at.protocol, port: at.port, targetPort, endpoints }
    : { ip: at.ip, protocol: at.protocol, port: at.port, targetPort, endpoints })
}

/** ClientIP affinity among `among`: a client already seen goes back to its endpoint; else a random one, remembered. */
function affinityRules (f: Family, p: ServicePort, among: readonly Endpoint[], setOf: (e: Endpoint) => string): Rule[] {
  const rules: Rule[] = among.map(e => ({ kind: 'affinityDnat', family: f, set: setOf(e), protocol: p.protocol, ip: e.ip, port: p.targetPort }))
  among.forEach((e, i) => rules.push({ kind: 'chooseDnat', family: f, among: among.length - i, set: setOf(e), protocol: p.protocol, ip: e.ip, port: p.targetPort }))
  return rules
}

const byIp = (a: Endpoint, b: Endpoint): number => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0)

/** One endpoint per address of family `f`, in address order, so that the rules are the same whatever order etcd gave. */
function endpointsOf (endpoints: readonly Endpoint[], f: Family): Endpoint[] {
  const eps = endpoints.filter(e => familyOf(e.ip) === f).sort(byIp)
  return eps.filter((e, i) => i === 0 || (eps[i - 1] as Endpoint).ip !== e.ip)
}

// Within one service the first element of a key wins, as across services: a port or NodePort
// twice is refused when the value is read, so this only keeps a hostile value from writing one
// key twice.
const earlierPort = (ports: readonly ServicePort[], i: number, same: (a: ServicePort, b: ServicePort) => boolean): boolean => {
  for (let j = 0; j < i; j++) if (same(ports[j] as ServicePort, ports[i] as ServicePort)) return true
  return false
}
const samePort = (a: ServicePort, b: ServicePort): boolean => a.protocol === b.protocol && a.port === b.port
const sameNodePort = (a: ServicePort, b: ServicePort): boolean => a.protocol === b.protocol && a.nodePort === b.nodePort

/** What `svc` with these endpoints puts in the table of node `node`. */
export function serviceRules (svc: ServiceSpec, endpoints: readonly Endpoint[], node: string): ServiceRules {
  const b: Builder = { chains: undefined, picks: undefined, sets: undefined, maps: {}, endpoints: {} }
  const hairpin: { 4: readonly string[], 6: readonly string[] } = { 4: [], 6: [] }
  for (const f of FAMILIES) {
    const clusterIP = svc.clusterIPs.find(ip => familyOf(ip) === f)
    if (clusterIP === undefined) continue
    const eps = endpointsOf(endpoints, f)
    const ips = eps.map(e => e.ip)
    const local = eps.filter(e => e.local || e.node === node)
    const localIps = local.length === eps.length ? ips : local.map(e => e.ip)
    hairpin[f] = localIps
    const v = familyTag(f)
    const affinity = svc.sessionAffinity === 'ClientIP'
    // Local: only this node's endpoints, and no masquerade (the endpoint sees the client's address).
    const nodePortLocal = svc.externalTrafficPolicy === 'Local'
    const nodePortEps = nodePortLocal ? local : eps
    svc.ports.forEach((p, i) => {
      const clusterKey = { ip: clusterIP, protocol: p.protocol, port: p.port }
      const nodePort = svc.type === 'NodePort' && p.nodePort !== undefined && !earlierPort(svc.ports, i, sameNodePort)
        ? { protocol: p.protocol, port: p.nodePort }
        : undefined
      const withCluster = !earlierPort(svc.ports, i, samePort)
      if (eps.length === 0) {
        if (withCluster) add(b, `no-endpoints-${v}` as MapName, { ...clusterKey, verdict: REJECT })
        if (nodePort !== undefined) add(b, `no-endpoint-node-ports-${v}` as MapName, { ...nodePort, verdict: REJECT })
        return
      }
      if (!affinity) {
        if (withCluster) {
          add(b, `cluster-ips-${v}` as MapName, { ...clusterKey, verdict: pick(b, 'cluster-ip', p, f, eps.length) })
          addSlots(b, endpointMapName('clusterIP', p.protocol, f), clusterKey, p.targetPort, ips)
        }
        if (nodePort === undefined) return
        if (nodePortEps.length === 0) {
          add(b, `no-endpoint-node-ports-${v}` as MapName, { ...nodePort, verdict: REJECT })
          return
        }
        // Cluster: any endpoint, maybe on another node: SNAT to this node so that the reply comes back through it.
        add(b, `node-ports-${v}` as MapName, { ...nodePort, verdict: pick(b, nodePortLocal ? 'node-port' : 'node-port-masquerade', p, f, nodePortEps.length) })
        addSlots(b, endpointMapName('nodePort', p.protocol, f), nodePort, p.targetPort, nodePortLocal ? localIps : ips)
        return
      }
      // ClientIP affinity: a chain of the service's own with a set per endpoint (kube-proxy's shape,
      // without the endpoint chains: hairpin is handled for every service in postrouting).
      const timeout = svc.affinityTimeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_S
      const setOf = (e: Endpoint): string => affinitySetName(svc, p, e.ip, timeout)
      const sets = (b.sets ??= {})
      for (const e of eps) sets[setOf(e)] = { family: f, timeoutSeconds: timeout }
      const chains = (b.chains ??= {})
      const svcChain = serviceChainName(svc, p, f)
      if (withCluster) {
        chains[svcChain] = affinityRules(f, p, eps, setOf)
        add(b, `cluster-ips-${v}` as MapName, { ...clusterKey, verdict: { goto: svcChain } })
      }
      if (nodePort === undefined) return
      if (nodePortEps.length === 0) {
        add(b, `no-endpoint-node-ports-${v}` as MapName, { ...nodePort, verdict: REJECT })
        return
      }
      const ext = nodePortChainName(svc, p, f)
      chains[ext] = nodePortLocal ? affinityRules(f, p, local, setOf) : [{ kind: 'masquerade' }, { kind: 'goto', chain: svcChain }]
      add(b, `node-ports-${v}` as MapName, { ...nodePort, verdict: { goto: ext } })
    })
  }
  return { chains: b.chains ?? NONE, picks: b.picks ?? NONE, sets: b.sets ?? NONE, maps: b.maps, endpoints: b.endpoints, hairpin }
}

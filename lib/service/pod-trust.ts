// Which reported pods a node may route to (issue #11). A pod record is written by its node's
// podmeshd, but any holder of write access to pods/ could name an address that is not a pod —
// another node's underlay, etcd, a host outside the cluster — and every node would DNAT service
// traffic there. So an address counts only inside the pod subnets that the pod's node holds
// (its node record, itself checked against the subnet leases), and a pod of a node without a
// record counts not at all. Pure: the daemon and `podmeshctl endpoints` judge alike.
import { containsIp, parseCidr, parseIp, type Cidr } from '../ipam/cidr'
import type { PodRecord } from './types'

export interface RejectedPod { pod: PodRecord, reason: string }

/** The pod subnets of each node, by node name (from the accepted node records). */
export type NodeSubnets = ReadonlyMap<string, readonly string[]>

export function trustedPods (pods: Iterable<PodRecord>, nodes: NodeSubnets): { accepted: PodRecord[], rejected: RejectedPod[] } {
  const parsed = new Map<string, Cidr[]>()
  const subnetsOf = (node: string): Cidr[] | undefined => {
    let c = parsed.get(node)
    if (c === undefined) {
      const texts = nodes.get(node)
      if (texts === undefined) return undefined
      parsed.set(node, c = texts.map(t => parseCidr(t)))
    }
    return c
  }
  const accepted: PodRecord[] = []
  const rejected: RejectedPod[] = []
  for (const pod of pods) {
    const subnets = subnetsOf(pod.node)
    if (subnets === undefined) { rejected.push({ pod, reason: `node ${pod.node} has no record` }); continue }
    const outside = pod.ips.find(ip => {
      const { family, addr } = parseIp(ip)
      return !subnets.some(s => containsIp(s, family, addr))
    })
    if (outside !== undefined) {
      rejected.push({ pod, reason: `address ${outside} is outside node ${pod.node}'s pod subnets (${(nodes.get(pod.node) ?? []).join(', ') || 'none'})` })
      continue
    }
    accepted.push(pod)
  }
  return { accepted, rejected }
}

// The services half of `podmeshctl diff` (issue #11): the service table podmeshd would write on
// this node — from etcd's services and pods, the pods judged against the node records as the
// daemon judges them — against the kernel's `inet podmesh`, one line per difference.
import type { StoreClient } from '../store/client'
import type { NodeRecord } from '../store/node-record'
import { parseEndpoint } from '../store/endpoint'
import { listServices } from '../store/service-read'
import { listPods } from '../store/pods'
import { resolveEndpoints } from '../service/endpoints'
import { serviceRuleset } from '../service/ruleset'
import { trustedPods } from '../service/pod-trust'
import { compareTables, rulesetSummary } from '../service/table-summary'
import { readServiceTable } from '../dataplane/nft/table-read'

export async function serviceDifferences (client: StoreClient, prefix: string, nodes: readonly NodeRecord[], self: NodeRecord): Promise<string[]> {
  // Skipped values are podmeshd's to report (it logs them); diff compares what it would apply.
  const ignore = (): void => {}
  const [services, pods] = await Promise.all([listServices(client, prefix, ignore), listPods(client, prefix, ignore)])
  const { accepted } = trustedPods(pods, new Map(nodes.map(n => [n.name, n.podCIDRs])))
  const ip = parseEndpoint(self.endpoint).ip
  const want = serviceRuleset({
    services,
    endpoints: resolveEndpoints(services, accepted, self.name),
    node: self.name,
    nodeAddresses: ip.includes(':') ? { 6: [ip] } : { 4: [ip] }
  })
  const have = await readServiceTable()
  if (have === undefined) return ['service table inet podmesh missing']
  return compareTables(rulesetSummary(want), have)
}

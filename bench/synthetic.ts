// Synthetic clusters for the scale and footprint benchmarks: N valid node records with their
// subnet leases, written straight into etcd in the layout lib/store uses (keys.ts), so the code
// under test reads them exactly as it reads real nodes. Keys are random 32-byte values (wg takes
// any 32 bytes as a public key); endpoints are in 192.0.2.0/24 and never answer.
import { randomBytes } from 'node:crypto'
import type { NetworkConfig } from '../lib/config/network'
import type { NodeRecord } from '../lib/store/node-record'
import type { StoreClient } from '../lib/store/client'
import { nodeKey, subnetKey } from '../lib/store/keys'
import { formatSubnetValue } from '../lib/store/subnet-value'

/** A /8 cut into /24s: 65,536 subnets, room for 10,000 nodes and more. */
export const SCALE_CONFIG: NetworkConfig = {
  v: 1,
  ipv4: { cidr: '10.0.0.0/8', subnetLen: 24 },
  backend: {
    type: 'wireguard',
    wireguard: { port: 51820, persistentKeepalive: 0, vxlanWithinLocation: false },
    vxlan: { vni: 1, port: 4789 }
  }
}

/** The i-th synthetic node (i ≥ 1); subnet 10.<i/256>.<i%256>.0/24, so index 0 is left for the real node. */
export function syntheticNode (i: number): NodeRecord {
  return {
    v: 1,
    name: `syn-${i}`,
    generation: 1,
    endpoint: `192.0.2.${100 + (i % 100)}:${20000 + (i % 40000)}`,
    publicKey: randomBytes(32).toString('base64'),
    podCIDRs: [`10.${(i >> 8) & 255}.${i & 255}.0/24`],
    mtu: 1420
  }
}

/** The etcd operations that create (or delete) one node: its record and its subnet lease. */
function putOps (prefix: string, n: NodeRecord): Array<{ request_put: { key: Buffer, value: Buffer } }> {
  return [
    { request_put: { key: Buffer.from(nodeKey(prefix, n.name)), value: Buffer.from(JSON.stringify(n)) } },
    ...n.podCIDRs.map(c => ({ request_put: { key: Buffer.from(subnetKey(prefix, c)), value: Buffer.from(formatSubnetValue(n.name)) } }))
  ]
}

/** Writes the nodes in transactions of ≤ 100 operations (etcd's default limit is 128). */
export async function putNodes (client: StoreClient, prefix: string, nodes: readonly NodeRecord[]): Promise<void> {
  const ops = nodes.flatMap(n => putOps(prefix, n))
  for (let i = 0; i < ops.length; i += 100) {
    await client.kv.txn({ compare: [], success: ops.slice(i, i + 100), failure: [] })
  }
}

/** One node joins: subnet first then record, in one transaction (as a real acquire does). */
export async function putNode (client: StoreClient, prefix: string, n: NodeRecord): Promise<void> {
  await client.kv.txn({ compare: [], success: putOps(prefix, n), failure: [] })
}

export async function deleteNode (client: StoreClient, prefix: string, n: NodeRecord): Promise<void> {
  await client.kv.txn({
    compare: [],
    success: [nodeKey(prefix, n.name), ...n.podCIDRs.map(c => subnetKey(prefix, c))].map(k => ({ request_delete_range: { key: Buffer.from(k) } })),
    failure: []
  })
}

// What keeps a lab node's VXLAN device from flooding, read from its kernel: the device's learning
// flag and its FDB. A VXLAN device sends broadcast/unknown/multicast frames to every all-zero
// (00:00:00:00:00:00) FDB entry and, with learning on, adds entries from whatever it receives;
// podmesh wants neither, only one permanent entry per VXLAN peer (its VTEP MAC → its underlay).
// Every read throws when its command fails or prints something unexpected: a failed read must
// not look like "no flooding entry".
import type { Test } from 'tap'
import { nsExec, type LabNode } from './cluster'

export const ALL_ZERO_MAC = '00:00:00:00:00:00'

export interface FdbEntry { mac: string, dst: string }
export interface VxlanState { ifname: string, mac: string, learning: boolean, fdb: FdbEntry[] }

/** The node's VXLAN device name (podmeshd's --vxlan-interface in the lab). */
export const vxlanIf = (n: LabNode): string => `${n.wgIf}x`

/** Reads the device's kind, MAC and learning flag (`ip -d -j link`) and its FDB (`bridge -j fdb`). */
export async function readVxlan (n: LabNode): Promise<VxlanState> {
  const ifname = vxlanIf(n)
  const links = JSON.parse(await nsExec(n.ns, ['ip', '-d', '-j', 'link', 'show', 'dev', ifname])) as Array<{
    address?: string, linkinfo?: { info_kind?: string, info_data?: { learning?: unknown } }
  }>
  const link = links[0]
  if (links.length !== 1 || link === undefined) throw new Error(`${n.name}: ip link show ${ifname} listed ${links.length} links`)
  if (link.linkinfo?.info_kind !== 'vxlan') throw new Error(`${n.name}: ${ifname} is a ${String(link.linkinfo?.info_kind)} device, not vxlan`)
  const learning = link.linkinfo.info_data?.learning
  if (typeof learning !== 'boolean') throw new Error(`${n.name}: ip -d -j link show ${ifname} has no boolean "learning": ${JSON.stringify(link.linkinfo)}`)
  if (typeof link.address !== 'string') throw new Error(`${n.name}: ${ifname} has no MAC address`)
  const entries = JSON.parse(await nsExec(n.ns, ['bridge', '-j', 'fdb', 'show', 'dev', ifname])) as Array<{ mac?: unknown, dst?: unknown }>
  const fdb = entries.map(e => {
    if (typeof e.mac !== 'string') throw new Error(`${n.name}: an FDB entry of ${ifname} without a MAC: ${JSON.stringify(e)}`)
    // An entry without a destination is kept visible ('') rather than dropped: it is not podmesh's.
    return { mac: e.mac, dst: typeof e.dst === 'string' ? e.dst : '' }
  })
  return { ifname, mac: link.address, learning, fdb }
}

const byKey = (a: FdbEntry, b: FdbEntry): number => `${a.mac}|${a.dst}`.localeCompare(`${b.mac}|${b.dst}`)

/**
 * On every node in `nodes`: learning off, no all-zero entry, and the FDB exactly one entry per
 * VXLAN peer — `peersOf(n)` — pointing at the address that peer publishes. The expected entries
 * come from the peers' own devices, so an empty or unread FDB cannot match.
 */
export async function checkNoFlooding (t: Test, nodes: readonly LabNode[], peersOf: (n: LabNode) => LabNode[]): Promise<void> {
  const states = new Map<LabNode, VxlanState>()
  for (const n of nodes) states.set(n, await readVxlan(n))
  for (const n of nodes) {
    const s = states.get(n) as VxlanState
    const want = peersOf(n).map(p => ({ mac: (states.get(p) ?? { mac: '(peer not read)' }).mac, dst: p.publicIp })).sort(byKey)
    t.ok(want.length > 0, `${n.name}: has VXLAN peers to check`)
    t.equal(s.learning, false, `${n.name}: ${s.ifname} has learning off`)
    t.strictSame(s.fdb.filter(f => f.mac === ALL_ZERO_MAC), [], `${n.name}: no all-zero (flooding) FDB entry`)
    t.strictSame([...s.fdb].sort(byKey), want, `${n.name}: one FDB entry per VXLAN peer, at its underlay address`)
  }
}

/**
 * Sends `count` broadcast pings out of the node's VXLAN device — broadcast frames the device
 * would copy to every all-zero FDB destination — and returns how many ping sent and how many
 * frames the device dropped meanwhile (tx_dropped: what it does with a frame it has nowhere to send).
 */
export async function sendBroadcast (n: LabNode, count: number): Promise<{ sent: number, dropped: number }> {
  const dev = vxlanIf(n)
  const txDropped = async (): Promise<number> =>
    (JSON.parse(await nsExec(n.ns, ['ip', '-s', '-j', 'link', 'show', 'dev', dev])) as Array<{ stats64: { tx: { dropped: number } } }>)[0]!.stats64.tx.dropped
  const before = await txDropped()
  // No reply is expected (nothing answers a broadcast ping here), so ping exits 1: its summary
  // line, not its status, says whether the packets left.
  const out = await nsExec(n.ns, ['sh', '-c', `ping -b -c ${count} -i 0.2 -W 1 -I ${dev} 255.255.255.255 2>&1; true`])
  const m = /(\d+) packets transmitted/.exec(out)
  if (m === null) throw new Error(`${n.name}: broadcast ping output not understood: ${out}`)
  return { sent: Number(m[1]), dropped: await txDropped() - before }
}

// The VXLAN backend's kernel side: the VXLAN device, its permanent FDB entries (remote MAC →
// remote underlay IP) and neighbour entries (remote tunnel IP → remote MAC). Every entry is
// programmed from etcd through netlink; the device is created with learning off, and no
// all-zero (flooding) FDB entry is ever added.

import { parseIp } from '../../ipam/cidr'
import type { ObservedVxlan, VxlanPlan } from '../../mesh/types'
import type { Link, Rtnl } from '../rtnl'

const hostLen = (ip: string): number => (parseIp(ip).family === 4 ? 32 : 128)

export async function observeVxlan (rtnl: Rtnl, ifname: string, links?: Link[]): Promise<ObservedVxlan | undefined> {
  const link = (links ?? await rtnl.links()).find(l => l.name === ifname)
  if (link === undefined || link.kind !== 'vxlan') return undefined
  const [addrs, fdb, neigh] = await Promise.all([rtnl.addresses(link.index), rtnl.fdb(link.index), rtnl.neighbors(link.index)])
  return {
    ifname,
    vni: link.vxlan?.vni ?? 0,
    port: link.vxlan?.port ?? 0,
    mtu: link.mtu,
    mac: link.mac ?? '',
    localIp: link.vxlan?.localIp ?? '',
    addresses: addrs.filter(a => !a.ip.startsWith('fe80:')).map(a => `${a.ip}/${a.prefixLen}`),
    fdb: fdb.filter(f => f.mac !== '00:00:00:00:00:00').map(f => ({ mac: f.mac, dst: f.dst })),
    // Only permanent entries are podmesh's; the kernel may hold transient ones of its own.
    neighbors: neigh.filter(n => n.permanent).map(n => ({ ip: n.ip, mac: n.mac }))
  }
}

export async function applyVxlan (rtnl: Rtnl, p: VxlanPlan): Promise<void> {
  let link = await rtnl.link(p.ifname)
  if (link !== undefined && (p.recreate || link.kind !== 'vxlan')) {
    await rtnl.deleteLink(link.index, p.ifname)
    link = undefined
  }
  if (link === undefined) {
    await rtnl.createVxlan(p.ifname, { vni: p.vni, port: p.port, localIp: p.localIp, mtu: p.setMtu ?? 1450, mac: p.mac })
    link = await rtnl.link(p.ifname)
    if (link === undefined) throw new Error(`vxlan device ${p.ifname} vanished right after it was created`)
  }
  const index = link.index
  if (!link.up || (p.setMtu !== undefined && link.mtu !== p.setMtu)) {
    await rtnl.setLink(index, p.ifname, { up: true, ...(p.setMtu !== undefined ? { mtu: p.setMtu } : {}) })
  }
  for (const a of p.delAddresses) {
    const [ip = '', len] = a.split('/')
    await rtnl.delAddress({ index, family: parseIp(ip).family, ip, prefixLen: Number(len) })
  }
  for (const a of p.addAddresses) {
    const [ip = ''] = a.split('/')
    await rtnl.addAddress({ index, family: parseIp(ip).family, ip, prefixLen: hostLen(ip) })
  }
  await rtnl.delFdb(p.delFdb.map(f => ({ index, ...f })))
  await rtnl.delNeighbors(p.delNeighbors.map(n => ({ index, family: parseIp(n.ip).family, ip: n.ip, mac: n.mac, permanent: true })))
  // Neighbour before FDB before route: a packet routed the moment the route exists finds both.
  await rtnl.setNeighbors(p.addNeighbors.map(n => ({ index, family: parseIp(n.ip).family, ip: n.ip, mac: n.mac, permanent: true })))
  await rtnl.addFdb(p.addFdb.map(f => ({ index, ...f })))
}

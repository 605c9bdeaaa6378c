// podmesh's route protocol number: the tag that marks a route as podmesh's own.
//
// Every route podmesh adds carries `proto 211`; podmesh lists, replaces and deletes only routes
// with this tag, so a route someone else added — by hand, by DHCP, by a routing daemon, or the
// kernel's own connected routes — is never touched, even for the same destination.
//
// Why 211: the kernel reserves 0–4 (unspec, redirect, kernel, boot, static) and iproute2's
// /etc/iproute2/rt_protos names the numbers used by known daemons (gated 8 … babel 42, openr 99,
// bgp 186, isis 187, ospf 188, rip 189, eigrp 192); 211 is named by none of them. An operator may
// name it with a line `211 podmesh` in /etc/iproute2/rt_protos.d/podmesh.conf, after which
// `ip route show proto podmesh` lists exactly podmesh's routes.
export const ROUTE_PROTOCOL = 211

// Whether this machine's kernel makes WireGuard links, asked of `ip` (iproute2) in a throwaway
// namespace of the lab. The WireGuard tests hold lib/dataplane/wireguard's auto/kernel choice to
// this answer, so it must not come from that code. Like podmeshd's first link, the attempt loads
// wireguard.ko where one is installed; the link goes with the namespace at teardown.
import { isShError, type Lab } from './netns'

export async function kernelHasWireguard (lab: Lab): Promise<boolean> {
  const ns = await lab.netns('wgk')
  try {
    await ns.ip(['link', 'add', lab.ifname('wgk'), 'type', 'wireguard'])
    return true
  } catch (e) {
    // The kernel's EOPNOTSUPP for an unknown link kind, as iproute2 prints it.
    if (isShError(e) && /Unknown device type/.test(e.stderr)) return false
    throw e
  }
}

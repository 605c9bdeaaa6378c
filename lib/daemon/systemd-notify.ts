// sd_notify for Type=notify units. Node has no unix datagram sockets, so the standard
// `systemd-notify` tool sends the message (the unit sets NotifyAccess=all for that reason).
// Outside systemd (no NOTIFY_SOCKET) this does nothing.

import { run } from '../dataplane/exec'

export async function notifySystemd (state: string): Promise<boolean> {
  if (process.env.NOTIFY_SOCKET === undefined || process.env.NOTIFY_SOCKET === '') return false
  try {
    await run('systemd-notify', [`--pid=${process.pid}`, state])
    return true
  } catch {
    return false
  }
}

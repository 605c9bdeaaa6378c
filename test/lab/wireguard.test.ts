// The lab suite over the WireGuard backend (userspace wireguard-go on this machine).
import t from 'tap'
import { meshSuite } from './mesh-suite'
meshSuite(t, { backend: 'wireguard' })

// The lab suite over the WireGuard backend: userspace wireguard-go on every kernel (cluster.ts passes --wg-mode userspace).
import t from 'tap'
import { meshSuite } from './mesh-suite'
meshSuite(t, { backend: 'wireguard' })

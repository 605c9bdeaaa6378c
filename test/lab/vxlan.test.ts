// The lab suite over the VXLAN backend: the same assertions as WireGuard's, parameterised.
import t from 'tap'
import { meshSuite } from './mesh-suite'
meshSuite(t, { backend: 'vxlan' })

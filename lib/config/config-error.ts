// The typed error of config parsing (network config, etcd options, CLI flags): which field is
// wrong and what kind of problem it is, so callers branch on `problem`, never on the message.

export type ConfigProblem =
  | 'type' // wrong JSON type (or not an object)
  | 'missing' // a required field is absent
  | 'unknownField'
  | 'version' // `v` is not the supported version
  | 'cidr' // malformed CIDR
  | 'hostBits' // CIDR with host bits set
  | 'family' // a CIDR of the wrong address family
  | 'noFamily' // neither ipv4 nor ipv6 configured
  | 'subnetLen' // node subnet length does not fit the range
  | 'tooFewSubnets' // the range (or its bounds) holds fewer than 2 node subnets
  | 'bounds' // subnetMin/subnetMax outside the range, wrong length, or reversed
  | 'backend' // unknown backend type
  | 'range' // a number outside its allowed range (port, VNI, MTU, keepalive)
  | 'flag' // a command-line flag that cannot be parsed
  | 'endpoint' // a malformed etcd endpoint
  | 'pair' // one half of a pair given without the other (cert/key, user/password)
  | 'json' // the stored value is not JSON
  | 'defaultRoute' // a pod range of length 0 (0.0.0.0/0, ::/0)
  | 'reserved' // a pod range overlapping loopback, link-local, multicast, unspecified, broadcast
  | 'tooWide' // a pod range shorter than /8 (IPv4) or /32 (IPv6), not forced
  | 'overlap' // a pod range containing the node's underlay address or an etcd endpoint; a service range overlapping a pod range
  | 'serviceRangeLen' // a service range wider than /12 (IPv4) or /108 (IPv6), or narrower than /28 or /124

export class ConfigError extends Error {
  readonly code = 'ECONFIG'
  /** Dotted path of the offending field ("ipv4.subnetLen"), or the flag ("--wg-port"). */
  readonly field: string
  readonly problem: ConfigProblem
  constructor (field: string, problem: ConfigProblem, message: string, options?: { cause?: unknown }) {
    super(`${field}: ${message}`, options)
    this.name = 'ConfigError'
    this.field = field
    this.problem = problem
  }
}

export const isConfigError = (e: unknown): e is ConfigError => e instanceof ConfigError

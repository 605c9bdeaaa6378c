// The Service layer's data (issue #11): what a service is, what a pod reports of itself, and the
// endpoints a service resolves to. Values of these shapes are stored in etcd (services/<name>,
// pods/<node>/<id>) as versioned JSON and validated where they are read; inside, they are trusted.

export type Protocol = 'tcp' | 'udp' | 'sctp'
export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp']

export type ServiceType = 'ClusterIP' | 'NodePort'
export type SessionAffinity = 'None' | 'ClientIP'
export type ExternalTrafficPolicy = 'Cluster' | 'Local'

/** One port of a service: what clients call (`port`), what the pods listen on (`targetPort`). */
export interface ServicePort {
  protocol: Protocol
  port: number
  targetPort: number
  /** Set for a NodePort service: the port on every node's addresses. */
  nodePort?: number
}

/** A label selector: every pair must match (equality only, as `app=web,tier=front`). */
export type Selector = Readonly<Record<string, string>>

/** services/<name>: a service as `podmeshctl service add` wrote it. */
export interface ServiceSpec {
  v: 1
  name: string
  type: ServiceType
  /** One per family the cluster has a service range for (IPv4 first). */
  clusterIPs: string[]
  ports: ServicePort[]
  selector: Selector
  sessionAffinity: SessionAffinity
  /** Seconds a client stays on its endpoint under ClientIP affinity (kube-proxy's default: 10800). */
  affinityTimeoutSeconds?: number
  externalTrafficPolicy: ExternalTrafficPolicy
}

/** pods/<node>/<id>: a pod as the node's CNI plugin reported it. */
export interface PodRecord {
  v: 1
  /** The CNI container ID (the key's last part). */
  id: string
  node: string
  /** The pod's interface inside its namespace. */
  ifname: string
  /** One address per family (no prefix length). */
  ips: string[]
  namespace?: string
  name?: string
  labels: Readonly<Record<string, string>>
}

/** One address of one pod behind a service, and whether it runs on this node. */
export interface Endpoint {
  ip: string
  node: string
  pod: string
  local: boolean
}

// The names the Service layer puts in etcd keys: a service's name (services/<name>) and a pod's
// CNI container ID (pods/<node>/<id>). One rule each for the CLI that writes them, the CNI
// plugin that reports pods and every reader of keys: what one accepts the others must too. Pure.

/** A service name is a DNS-1035 label, as in Kubernetes: it may become a DNS name. */
const SERVICE_NAME_RE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/
export const isServiceName = (name: string): boolean => SERVICE_NAME_RE.test(name)
export const SERVICE_NAME_RULE = "a DNS label: lower-case letters, digits and '-', starting with a letter, ending alphanumeric, at most 63 characters"

/**
 * A CNI container ID (CNI_CONTAINERID) as the CNI spec defines it: an alphanumeric, then
 * alphanumerics, '_', '.' and '-' (runtimes use 64 hex digits). At most 128 characters, so a key
 * stays small; starting alphanumeric keeps '.' and '..' out of a key part.
 */
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/
export const isContainerId = (id: string): boolean => CONTAINER_ID_RE.test(id)
export const CONTAINER_ID_RULE = "1-128 of [A-Za-z0-9_.-], starting alphanumeric (the CNI spec's rule)"

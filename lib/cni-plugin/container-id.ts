// The CNI container ID as podmesh accepts it: it names the pod's report file in the spool and the
// last part of its etcd key, so it may hold nothing a path or a key could misread. Pure.

/** 1-128 of [A-Za-z0-9_.-], starting alphanumeric (never "." or ".."; libcni's rule, bounded). */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/
export const isContainerId = (id: string): boolean => CONTAINER_ID.test(id)
export const CONTAINER_ID_RULE = '1-128 of [A-Za-z0-9_.-], starting with a letter or digit'

// A Linux interface name as podmesh accepts it (its WireGuard, VXLAN and bridge devices): the
// one rule for podmeshd's flags and the CNI config. Stricter than the kernel (which takes any
// 1-15 bytes but '/', ':' and whitespace) so a name is also safe in file names and logs. Pure.

const INTERFACE_NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/
export const isInterfaceName = (name: string): boolean => INTERFACE_NAME_RE.test(name) && name !== '.' && name !== '..'
export const INTERFACE_NAME_RULE = '1-15 of [A-Za-z0-9_.-]'

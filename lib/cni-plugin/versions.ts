// The CNI spec versions the podmesh plugin speaks: those of the reference plugins it is chained
// after (Debian's containernetworking-plugins 1.1: `CNI_COMMAND=VERSION /usr/lib/cni/bridge`).
// Results before 0.3.0 carry `ip4`/`ip6` instead of `ips` (pod-ips.ts reads both). Pure.

export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const
export const CURRENT_VERSION = '1.0.0'

export const isSupportedVersion = (v: string): boolean => (SUPPORTED_VERSIONS as readonly string[]).includes(v)

/** CHECK exists since 0.4.0; a runtime must not send it for an older config. */
export const allowsCheck = (v: string): boolean => v === '0.4.0' || v === '1.0.0'

/** The VERSION command's answer. */
export const versionResult = (): { cniVersion: string, supportedVersions: string[] } =>
  ({ cniVersion: CURRENT_VERSION, supportedVersions: [...SUPPORTED_VERSIONS] })

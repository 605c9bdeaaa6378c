// A WireGuard key in base64, the contract value of a node record's `publicKey` and the content
// of the node's private key file: 32 bytes → 43 characters and one '='. The one check for
// podmeshd, podmeshctl and the key file. Pure.

const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/
/** All-zero: what an unset key reads as; WireGuard treats it as "no key", never a peer's. */
const ZERO_KEY = 'A'.repeat(43) + '='

export const isWireguardKey = (text: string): boolean => KEY_RE.test(text) && text !== ZERO_KEY

// A VXLAN device's MAC as node records carry it and the state dir keeps it: lower-case,
// colon-separated. The one rule for the record parser and the VXLAN backend. Pure.

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/
export const isMac = (text: string): boolean => MAC_RE.test(text)
export const MAC_RULE = 'a lower-case MAC aa:bb:cc:dd:ee:ff'

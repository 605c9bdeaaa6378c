// The value of a subnets/<cidr> key: {"v":1,"node":"<name>"} — which node holds the subnet.
// Formatting and strict parsing of it. Pure.
import { isNodeName } from './keys'
import { RecordError } from './record-error'

export const SUBNET_VALUE_VERSION = 1

export interface SubnetValue {
  v: 1
  node: string
}

export const formatSubnetValue = (node: string): string => JSON.stringify({ v: SUBNET_VALUE_VERSION, node })

/** The owning node's name; throws RecordError for anything but a well-formed value. */
export function parseSubnetValue (key: string, text: string): string {
  if (text.length > 1024) throw new RecordError(key, 'tooLarge', `subnet value is ${text.length} bytes`)
  let o: unknown
  try {
    o = JSON.parse(text)
  } catch (e) {
    throw new RecordError(key, 'json', `subnet value is not JSON: ${(e as Error).message}`, { cause: e })
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new RecordError(key, 'type', 'subnet value must be an object')
  const v = o as Record<string, unknown>
  for (const k of Object.keys(v)) {
    if (k !== 'v' && k !== 'node') throw new RecordError(key, 'unknownField', `subnet value has unknown field "${k}"`)
  }
  if (v.v !== SUBNET_VALUE_VERSION) throw new RecordError(key, 'version', `subnet value has unsupported version ${JSON.stringify(v.v)}`)
  if (typeof v.node !== 'string' || !isNodeName(v.node)) {
    throw new RecordError(key, 'name', `subnet value names an invalid node ${JSON.stringify(v.node)}`)
  }
  return v.node
}

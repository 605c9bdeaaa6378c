// The VXLAN device's MAC: made once per node (locally administered, random), kept in the state
// dir so it stays stable across restarts and remote nodes' FDB entries stay valid.

import { randomBytes } from 'node:crypto'
import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isMac } from '../../store/mac'


export const VXLAN_MAC_FILE = 'vxlan-mac'

export async function loadOrCreateVxlanMac (stateDir: string): Promise<string> {
  const file = join(stateDir, VXLAN_MAC_FILE)
  try {
    const text = (await readFile(file, 'utf8')).trim()
    if (isMac(text)) return text
    throw new Error(`${file} holds "${text}", not a MAC address; remove it to get a new one`)
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') throw e
  }
  const b = randomBytes(6)
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02 // unicast, locally administered
  const mac = [...b].map(x => x.toString(16).padStart(2, '0')).join(':')
  await writeFile(`${file}.tmp`, mac + '\n', { mode: 0o644 })
  await rename(`${file}.tmp`, file)
  return mac
}

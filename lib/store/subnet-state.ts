// The node's memory of its subnets on local disk (<stateDir>/subnets.json), so a restart asks
// for the same subnets even before looking at etcd. Written atomically (temp file + rename).
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

export const SUBNET_STATE_FILE = 'subnets.json'

export interface SubnetState {
  v: 1
  name: string
  podCIDRs: string[]
}

/**
 * The remembered subnets of `name`, or undefined when there is no usable state (absent,
 * unreadable, another node's, or not ours to trust): the caller then falls back to etcd.
 */
export async function loadSubnetState (stateDir: string, name: string): Promise<SubnetState | undefined> {
  let text: string
  try {
    text = await readFile(join(stateDir, SUBNET_STATE_FILE), 'utf8')
  } catch {
    return undefined
  }
  try {
    const o = JSON.parse(text) as Partial<SubnetState>
    if (o.v !== 1 || o.name !== name || !Array.isArray(o.podCIDRs) || !o.podCIDRs.every(s => typeof s === 'string')) return undefined
    return { v: 1, name, podCIDRs: o.podCIDRs }
  } catch {
    return undefined
  }
}

export async function saveSubnetState (stateDir: string, state: SubnetState): Promise<void> {
  await mkdir(stateDir, { recursive: true })
  const file = join(stateDir, SUBNET_STATE_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o644)
  try {
    await fh.writeFile(JSON.stringify(state) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  try {
    await rename(tmp, file)
  } catch (e) {
    await rm(tmp, { force: true })
    throw e
  }
}

// `podmeshctl auth enable` and `podmeshctl node credentials <name>`: etcd users and roles so that
// each node runs with credentials that can write only its own keys (lib/store/auth-roles.ts).
// Both are safe to run again: roles are created if missing and their grants re-applied. `node
// credentials` gives an existing node user a new password (rotation); `auth enable` leaves
// existing users alone — resetting root's password would cut off the very client running it.
// Passwords are generated here and returned once: etcd keeps only a hash. Managing users
// needs etcd's root role, so both run as root once auth is on.
import { randomBytes } from 'node:crypto'
import * as etcd3 from 'etcd3'
import type { StoreClient } from '../store/client'
import { storeCall } from '../store/client'
import { ADMIN_ROLE, ADMIN_USER, type Grant, READ_ROLE, adminGrants, nodeGrants, nodeRole, nodeUser, readGrants } from '../store/auth-roles'
import { KeyError, isNodeName, nodeKey } from '../store/keys'
import { type OutputFormat, formatJson, formatTable } from './output'

export const authEnableHelp = 'podmeshctl auth enable          create root, podmesh-admin and podmesh-read in etcd and turn auth on; prints the passwords once\n'
export const nodeCredentialsHelp = 'podmeshctl node credentials <name> create or reset the etcd user of one node (writes only its own keys); prints the password once\n'

export const newPassword = (): string => randomBytes(18).toString('base64url')

/** `password` is absent when an existing user was left as it was. */
export interface Credential { user: string, password?: string, roles: string[] }

async function ensureRole (client: StoreClient, name: string, grants: Grant[]): Promise<void> {
  const role = client.role(name)
  await storeCall(`role add ${name}`, async () => await role.create().catch((e: unknown) => {
    if (!(e instanceof etcd3.EtcdRoleExistsError)) throw e
  }))
  // One at a time: etcd3's array form drops the call options and races the role's revision.
  for (const g of grants) {
    const req = g.end === undefined
      ? { permission: g.permission, key: g.key }
      : { permission: g.permission, range: new etcd3.Range(g.key, g.end) }
    await storeCall(`role grant ${name} ${g.key}`, async () => await role.grant(req))
  }
}

async function ensureUser (client: StoreClient, name: string, password: string, roles: string[], reset: boolean): Promise<Credential> {
  const user = client.user(name)
  const created = await storeCall(`user add ${name}`, async () => await user.create(password).then(() => true, (e: unknown) => {
    if (!(e instanceof etcd3.EtcdUserExistsError)) throw e
    return false
  }))
  if (!created && reset) await storeCall(`user passwd ${name}`, async () => await user.setPassword(password))
  for (const r of roles) await storeCall(`user grant-role ${name} ${r}`, async () => await user.addRole(r))
  return created || reset ? { user: name, password, roles } : { user: name, roles }
}

function render (creds: Credential[], format: OutputFormat, note: string): string {
  if (format === 'json') return formatJson(creds)
  return formatTable([['USER', 'ROLES', 'PASSWORD'], ...creds.map(c => [c.user, c.roles.join(','), c.password ?? '(unchanged)'])]) + note
}

/** Creates the users and roles, then turns auth on; returns the credentials made. */
export async function authEnable (client: StoreClient, prefix: string, passwords: { root?: string, admin?: string } = {}): Promise<Credential[]> {
  await ensureRole(client, ADMIN_ROLE, adminGrants(prefix))
  await ensureRole(client, READ_ROLE, readGrants(prefix))
  const root = await ensureUser(client, 'root', passwords.root ?? newPassword(), ['root'], false)
  const admin = await ensureUser(client, ADMIN_USER, passwords.admin ?? newPassword(), [ADMIN_ROLE], false)
  await storeCall('auth enable', async () => await client.auth.authEnable())
  return [root, admin]
}

export async function runAuthEnable (client: StoreClient, prefix: string, format: OutputFormat): Promise<string> {
  return render(await authEnable(client, prefix), format,
    'etcd auth is on. Keep root for user management (node credentials); use podmesh-admin for the other commands. ' +
    'These passwords are not shown again.\n')
}

/** Creates (or resets) the node's role and user; its role names exactly this node's keys. */
export async function nodeCredentials (client: StoreClient, prefix: string, name: string, password = newPassword()): Promise<Credential> {
  if (!isNodeName(name)) throw new KeyError(nodeKey(prefix, name), `"${name}" is not a valid node name`)
  await ensureRole(client, nodeRole(name), nodeGrants(prefix, name))
  return await ensureUser(client, nodeUser(name), password, [nodeRole(name)], true)
}

export async function runNodeCredentials (client: StoreClient, prefix: string, name: string, format: OutputFormat): Promise<string> {
  const c = await nodeCredentials(client, prefix, name)
  return render([c], format, `give podmeshd on ${name} --etcd-username ${c.user} and this password (PODMESH_ETCD_PASSWORD); it is not shown again.\n`)
}

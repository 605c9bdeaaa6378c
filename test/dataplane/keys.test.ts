// The node's private key file: made with `wg genkey` as 0600, reused on later starts, refused when
// others may read it or when it is not one key; the key itself never shows up in an error.

import t from 'tap'
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'
import { isPrivateKeyError, loadOrCreatePrivateKey, PRIVATE_KEY_FILE } from '../../lib/dataplane/keys'

const pubkeyOf = (priv: string): string => execFileSync('wg', ['pubkey'], { input: priv }).toString().trim()

t.test('keys', async t => {
  const root = await mkdtemp(join(tmpdir(), 'podmesh-keys-'))
  t.teardown(async () => await rm(root, { recursive: true, force: true }))
  const stateDir = join(root, 'state', 'nested')

  const first = await loadOrCreatePrivateKey(stateDir)
  const file = join(stateDir, PRIVATE_KEY_FILE)
  t.equal(first.privateKeyFile, file)
  const st = await stat(file)
  t.equal(st.mode & 0o777, 0o600, 'key file is 0600')
  t.equal((await stat(stateDir)).mode & 0o777, 0o700, 'a missing state dir is made 0700')
  const priv = (await readFile(file, 'utf8')).trim()
  t.equal(first.publicKey, pubkeyOf(priv), 'public key matches the stored private key')
  t.notOk(JSON.stringify(first).includes(priv), 'the private key is never returned')

  const again = await loadOrCreatePrivateKey(stateDir)
  t.strictSame(again, first, 'reused on a later start')
  t.equal((await stat(file)).ino, st.ino, 'the file was not rewritten')
  t.equal((await readFile(file, 'utf8')).trim(), priv)

  const refuses = async (name: string, problem: string): Promise<void> => {
    const e = await loadOrCreatePrivateKey(stateDir).then(() => undefined, e => e)
    t.ok(isPrivateKeyError(e), `${name}: a PrivateKeyError`)
    t.match(e, { code: 'EPRIVATEKEY', problem, file }, name)
    t.notOk(String((e as Error)?.message).includes(priv), `${name}: the message does not quote the key`)
  }

  await chmod(file, 0o644)
  await refuses('world-readable', 'mode')
  await chmod(file, 0o640)
  await refuses('group-readable', 'mode')
  await chmod(file, 0o602)
  await refuses('world-writable', 'mode')
  t.equal((await readFile(file, 'utf8')).trim(), priv, 'a refused key file is left as it is')

  await chmod(file, 0o600)
  await writeFile(file, `${priv}\n${priv}\n`)
  await refuses('two keys', 'malformed')
  await writeFile(file, priv.slice(0, 40) + '\n')
  await refuses('truncated', 'malformed')

  await rm(file)
  await writeFile(join(root, 'elsewhere'), `${priv}\n`, { mode: 0o600 })
  await symlink(join(root, 'elsewhere'), file)
  await refuses('symlink', 'not-a-file')

  // Another state dir: a different key each time one is created.
  const other = await loadOrCreatePrivateKey(join(root, 'other'))
  t.not(other.publicKey, first.publicKey, 'a fresh state dir gets a fresh key')
})

import t from 'tap'
import { promises as fs } from 'node:fs'
import { join } from 'node:path'
import { conflistPath, isConflistFileError, removeConflist, writeConflist } from '../../lib/dataplane/cni/conflist-file'
import { renderConflist } from '../../lib/mesh/cni-config'

const conflist = (mtu: number): unknown => renderConflist({
  networkName: 'podmesh', bridge: 'pmbr0', podCIDRs: ['10.244.1.0/24'], clusterCIDRs: ['10.244.0.0/16'], mtu
})

t.test('writes 10-<name>.conflist with mode 0644, then skips identical content', async t => {
  const dir = join(t.testdir(), 'net.d') // does not exist yet: created on the first write
  const oldUmask = process.umask(0o077) // a strict umask must not leak into the file mode
  t.teardown(() => { process.umask(oldUmask) })

  t.equal(await writeConflist(dir, 'podmesh', conflist(1420)), true, 'first write writes')
  const path = join(dir, '10-podmesh.conflist')
  t.equal(conflistPath(dir, 'podmesh'), path)
  t.strictSame(JSON.parse(await fs.readFile(path, 'utf8')), conflist(1420))
  t.equal((await fs.stat(path)).mode & 0o777, 0o644)
  const before = await fs.stat(path)

  t.equal(await writeConflist(dir, 'podmesh', conflist(1420)), false, 'same content: no write')
  const after = await fs.stat(path)
  t.equal(after.ino, before.ino, 'file untouched (same inode)')
  t.equal(after.mtimeMs, before.mtimeMs, 'file untouched (same mtime)')
  t.strictSame(await fs.readdir(dir), ['10-podmesh.conflist'], 'no temp files left')
})

t.test('a changed config replaces the file by rename: a reader of the old file sees it whole', async t => {
  const dir = t.testdir()
  await writeConflist(dir, 'podmesh', conflist(1420))
  const path = conflistPath(dir, 'podmesh')
  const oldText = await fs.readFile(path, 'utf8')
  const reader = await fs.open(path, 'r')
  t.teardown(() => reader.close())
  const oldIno = (await reader.stat()).ino

  t.equal(await writeConflist(dir, 'podmesh', conflist(1380)), true)
  t.strictSame(JSON.parse(await fs.readFile(path, 'utf8')), conflist(1380))
  t.not((await fs.stat(path)).ino, oldIno, 'a new inode took the name')
  t.equal(await reader.readFile('utf8'), oldText, 'the old file was never truncated or rewritten in place')
  t.strictSame(await fs.readdir(dir), ['10-podmesh.conflist'], 'no temp files left')
})

t.test('a drifted mode is repaired even when the content matches', async t => {
  const dir = t.testdir()
  await writeConflist(dir, 'podmesh', conflist(1420))
  const path = conflistPath(dir, 'podmesh')
  await fs.chmod(path, 0o600)
  t.equal(await writeConflist(dir, 'podmesh', conflist(1420)), true)
  t.equal((await fs.stat(path)).mode & 0o777, 0o644)
})

t.test('removeConflist removes only this network file and reports whether it was there', async t => {
  const dir = t.testdir({ '99-other.conflist': '{}' })
  await writeConflist(dir, 'podmesh', conflist(1420))
  t.equal(await removeConflist(dir, 'podmesh'), true)
  t.equal(await removeConflist(dir, 'podmesh'), false, 'already gone')
  t.strictSame(await fs.readdir(dir), ['99-other.conflist'])
})

t.test('typed errors: a name that is not a plain file name; an unwritable dir', async t => {
  const dir = t.testdir({ 'a-file': 'x' })
  await t.rejects(writeConflist(dir, '../escape', conflist(1420)), { code: 'ECONFLISTFILE' })
  t.strictSame((await fs.readdir(dir)).sort(), ['a-file'], 'nothing written')
  // A regular file where the dir should be: mkdir fails, the error names the path.
  const notDir = join(dir, 'a-file')
  try {
    await writeConflist(notDir, 'podmesh', conflist(1420))
    t.fail('should have thrown')
  } catch (e) {
    t.ok(isConflistFileError(e))
    t.match((e as Error).message, notDir)
  }
})

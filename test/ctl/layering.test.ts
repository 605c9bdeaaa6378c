// podmeshctl reads what daemons publish through the store's contract (lib/store), never through
// the daemon's code: lib/ctl must not import lib/daemon. (diff and doctor read the local kernel
// through lib/dataplane, as the daemon does; that is allowed.)
import t from 'tap'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ROOT } from '../harness/compile'

t.test('lib/ctl does not import lib/daemon', async t => {
  const dir = join(ROOT, 'lib', 'ctl')
  const files = (await readdir(dir)).filter(f => f.endsWith('.ts'))
  t.ok(files.length > 3, 'the ctl sources are there')
  for (const f of files) {
    const text = await readFile(join(dir, f), 'utf8')
    const imports = [...text.matchAll(/from '([^']+)'/g)].map(m => m[1] ?? '')
    t.strictSame(imports.filter(i => /^\.\.\/daemon\//.test(i)), [], f)
  }
})

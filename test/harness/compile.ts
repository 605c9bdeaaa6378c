// Transpiles one entry point and the project files it imports to JavaScript in a temp dir, so
// tests can run a CLI as a child process at the speed of the shipped build instead of through
// the TypeScript loader. Type checking is `tsc --noEmit`'s job, not this file's.
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import * as ts from 'typescript'
import type { Teardownable } from './etcd'

export const ROOT = join(__dirname, '..', '..')

/** Returns the path of the compiled .js for `entry` (relative to the repo root). */
export async function compileEntry (t: Teardownable, entry: string): Promise<string> {
  const outDir = await mkdtemp(join(tmpdir(), 'podmesh-build-'))
  t.teardown(async () => await rm(outDir, { recursive: true, force: true }))
  const seen = new Set<string>()
  const queue = [resolve(ROOT, entry)]
  while (queue.length > 0) {
    const file = queue.pop() as string
    if (seen.has(file)) continue
    seen.add(file)
    const source = await readFile(file, 'utf8')
    const out = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true }
    })
    const target = join(outDir, relative(ROOT, file)).replace(/\.ts$/, '.js')
    await mkdir(dirname(target), { recursive: true })
    await writeFile(target, out.outputText)
    // Relative imports are project files; everything else comes from node_modules.
    for (const m of source.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      queue.push(resolve(dirname(file), `${m[1] ?? ''}.ts`))
    }
  }
  await symlink(join(ROOT, 'node_modules'), join(outDir, 'node_modules'))
  return join(outDir, entry.replace(/\.ts$/, '.js'))
}

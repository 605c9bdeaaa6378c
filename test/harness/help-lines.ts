// Asserts that each help text lists each shared flag with the table's variable, help and default:
// the check the etcd and node flag tests share.
import type { Test } from 'tap'

interface SharedFlag { flag: string, env: string, help: string, default?: unknown }

export function assertHelpLists (t: Test, flags: Iterable<SharedFlag>, helps: ReadonlyArray<readonly [who: string, text: string]>): void {
  for (const s of flags) {
    for (const [who, text] of helps) {
      const line = text.split('\n').find(l => l.trimStart().startsWith(`--${s.flag} `))
      t.ok(line !== undefined, `${who} lists --${s.flag}`)
      t.match(line, s.env, `${who}: --${s.flag} names ${s.env}`)
      t.match(line, s.help, `${who}: --${s.flag} has the table's help`)
      if (s.default !== undefined) t.match(line, String(s.default), `${who}: --${s.flag} shows its default`)
    }
  }
}

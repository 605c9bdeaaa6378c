// How long podmesh lets one `nft -f` run: exec.ts's 30 s, plus time in proportion to the script,
// so that a full sync of a large table is not killed for its size (it was at 10,000 services).
import t from 'tap'
import { nftTimeoutMs } from '../../lib/dataplane/nft/apply'

t.test('30 s for a small script, 10 ms more per KiB', async t => {
  const cases: Array<[string, number, number]> = [
    ['an empty script', 0, 30_000],
    ['a partial update of a few lines', 300, 30_010],
    ['1 MiB', 1 << 20, 30_000 + 10_240],
    ['a full sync of 10,000 services × 10 endpoints (4.7 MB)', 4_700_000, 30_000 + Math.ceil(4_700_000 / 1024) * 10]
  ]
  for (const [name, bytes, ms] of cases) t.equal(nftTimeoutMs('x'.repeat(bytes)), ms, name)
  t.equal(nftTimeoutMs('é'.repeat(1024)), 30_020, 'counted in bytes, not characters')
})

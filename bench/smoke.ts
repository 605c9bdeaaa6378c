// The smoke size: `--smoke` (or BENCH_SMOKE=1) runs a benchmark once at a small size, in
// seconds, measuring the same things as a full run. CI runs every benchmark this way
// (test/bench/smoke.test.ts, scripts/bench-smoke) so that none can rot unnoticed; a smoke run's
// figures are printed as usual, marked smoke=true, and are not the ones to quote.

export const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1'

/** A size argument's default: `full` normally, `smoke` in a smoke run (an explicit argument wins over both). */
export const sized = <T>(full: T, smoke: T): T => SMOKE ? smoke : full

// The benchmarks, one per `bench:<name>` script in package.json (the one list: scripts/bench-smoke
// and test/bench/smoke.test.ts run each of them). Run directly, prints the names on one line.
'use strict'
const { scripts } = require('../package.json')

/** Names of the benchmarks: bench/<name>.ts for every `bench:<name>` script but `bench:smoke`. */
const benchNames = () => Object.keys(scripts).filter(k => k.startsWith('bench:') && k !== 'bench:smoke').map(k => k.slice('bench:'.length))

module.exports = { benchNames }
if (require.main === module) process.stdout.write(benchNames().join(' ') + '\n')

// Registers tap's TypeScript loader for a benchmark run (`node --import=<checkout>/bench/ts-loader.mjs`).
// Imported from this file, the loader resolves from this checkout's node_modules whatever the
// caller's working directory (a bare `--import=@tapjs/typescript/import` resolves from the cwd).
import '@tapjs/typescript/import'

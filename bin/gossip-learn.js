#!/usr/bin/env node
// Entry point: load the polyfill first, then run the TypeScript CLI through tsx (no build step).
import { register } from 'tsx/esm/api'

register()
// tsx turns Node's source maps on, and Node then reads and keeps the map of every module it loads
// (tfjs, libp2p, our TypeScript): 27 MiB of a daemon's 300 MiB resident (docs/BENCHMARKS.md,
// Memory). Traces then point into the transpiled code; `node --enable-source-maps` keeps them.
const keepMaps = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].includes(
  '--enable-source-maps',
)
if (!keepMaps) process.setSourceMapsEnabled(false)
await import('../src/polyfill.ts')
const { main } = await import('../src/cli/index.ts')
process.exitCode = await main(process.argv.slice(2))

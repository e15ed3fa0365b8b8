#!/usr/bin/env node
// Entry point. Runs the compiled dist/ when its build is current (`npm run build`, which npm runs
// on install through `prepare`), else the TypeScript sources through tsx. tsx's loader thread
// alone holds about 30 MiB: a default `start` node is 137 MiB resident from dist/ against 156 MiB
// through tsx, medians of 8 pairs (docs/BENCHMARKS.md, Memory). GOSSIP_LEARN_FROM_SOURCE=1 forces tsx.
// glibc's malloc is tuned before anything else loads, since V8's compiler threads take their
// arenas at their first allocation (bin/allocator.js). What it did goes to the CLI, which warns
// when it could not and reports it in /metrics and /status.
import { fileURLToPath } from 'node:url'
import { tuneAllocator } from './allocator.js'
import { buildIsCurrent } from './current-build.js'

const allocator = tuneAllocator()

const root = fileURLToPath(new URL('..', import.meta.url))
let main
if (buildIsCurrent(root)) {
  await import('../dist/polyfill.js')
  ;({ main } = await import('../dist/cli/index.js'))
} else {
  const { register } = await import('tsx/esm/api')
  register()
  // tsx turns Node's source maps on, and Node then reads and keeps the map of every module it
  // loads (tfjs, libp2p, our TypeScript): 27 MiB of a daemon's 300 MiB resident (docs/BENCHMARKS.md,
  // Memory). Traces then point into the transpiled code; `node --enable-source-maps` keeps them.
  const keepMaps = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].includes(
    '--enable-source-maps',
  )
  if (!keepMaps) process.setSourceMapsEnabled(false)
  await import('../src/polyfill.ts')
  ;({ main } = await import('../src/cli/index.ts'))
}
process.exitCode = await main(process.argv.slice(2), { allocator })

#!/usr/bin/env node
// Entry point: load the polyfill first, then run the TypeScript CLI through tsx (no build step).
import { register } from 'tsx/esm/api'

register()
await import('../src/polyfill.ts')
const { main } = await import('../src/cli/index.ts')
process.exitCode = await main(process.argv.slice(2))

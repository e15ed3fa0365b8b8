/**
 * V8 heap tuning for the long-running commands (`start`, the testbed's hosts): a daemon's live
 * heap is about 45 MiB, but by default V8 lets the old generation grow to 3-4 times what the
 * last full collection left and keeps a 48 MiB young generation, so a training node sat at
 * 300-370 MiB resident before its first full collection. `--optimize-for-size` bounds both
 * (measured: 175 MiB with it, the same training speed within noise; docs/BENCHMARKS.md, Memory).
 */
import { setFlagsFromString } from 'node:v8'

/** The V8 flag (node does not accept it in NODE_OPTIONS, only on its command line or at run time). */
export const SMALL_HEAP_FLAG = '--optimize-for-size'

/**
 * Makes V8 favour a small heap over allocation speed, from now on (the flag is read at every
 * collection, so setting it at run time works). Skipped when `node` was given the flag or its
 * opposite, so `node --no-optimize-for-size bin/gossip-learn.js start` measures the default.
 */
export function favourSmallHeap(execArgv: readonly string[] = process.execArgv): boolean {
  if (execArgv.some((a) => a.endsWith('optimize-for-size') || a.endsWith('optimize_for_size'))) return false
  setFlagsFromString(SMALL_HEAP_FLAG)
  return true
}

/**
 * V8 heap tuning for the long-running commands (`start`, the testbed's hosts). A daemon's live
 * heap is about 45 MiB, but by default V8 grows the young generation to 2 x 16 MiB and lets the
 * old generation reach 3-4 times what the last full collection left, so a training node sat at
 * 300-370 MiB resident. Two flags bound both, and V8 reads them at every collection, so setting
 * them at run time works:
 * - the young generation stays at its initial 2 x 1 MiB (growth factor 1);
 * - the old generation may grow 10 % past what the last full collection left.
 * Until the twenty-third session this was `--optimize-for-size`, which bounds the same two but
 * also makes every full collection a memory-reducing one (compacting, every 1-2 s in a gossiping
 * node): it cost a gossiping peer 20-30 % of its training steps, these flags about 10 MiB of
 * resident memory (docs/BENCHMARKS.md, Memory and CPU overhead).
 */
import { setFlagsFromString } from 'node:v8'

/** The V8 flags set at run time (node does not accept them in NODE_OPTIONS). */
export const HEAP_FLAGS: readonly string[] = ['--semi-space-growth-factor=1', '--heap-growing-percent=10']

/** Flags whose presence on node's command line means the user tunes the heap: we then leave it alone. */
const USER_TUNED = ['optimize-for-size', 'semi-space', 'heap-growing-percent']

/**
 * Bounds V8's heap from now on. Skipped, returning false, when `node` was given a heap flag of its
 * own (`node --optimize-for-size bin/gossip-learn.js start`, `node --semi-space-growth-factor=2
 * ...` to measure V8's default young generation).
 */
export function favourSmallHeap(
  execArgv: readonly string[] = process.execArgv,
  setFlags: (flags: string) => void = setFlagsFromString,
): boolean {
  const normal = execArgv.map((a) => a.replaceAll('_', '-'))
  if (normal.some((a) => USER_TUNED.some((f) => a.includes(f)))) return false
  for (const flag of HEAP_FLAGS) setFlags(flag)
  return true
}

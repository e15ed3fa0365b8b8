/**
 * V8 heap tuning for the long-running commands (`start`, the testbed's hosts). A daemon's live
 * heap is about 45 MiB, but by default V8 grows the young generation to 2 x 16 MiB and lets the
 * old generation reach 3-4 times what the last full collection left, so a training node sat at
 * 300-370 MiB resident. V8 reads these flags at every collection, so setting them at run time works:
 * - always: the young generation stays at its initial 2 x 1 MiB (growth factor 1), and the old
 *   generation may grow 10 % past what the last full collection left;
 * - while the daemons start (the dataset is read, shares are copied): `--optimize-for-size`, whose
 *   full collections compact and give memory back. Left on, it made every full collection of a
 *   running node such a one (every 1-2 s in a gossiping node) and cost 20-30 % of its training
 *   steps; turned off just before the first training step, the node holds about what it held
 *   with it throughout (docs/BENCHMARKS.md, CPU overhead and Memory).
 */
import { setFlagsFromString } from 'node:v8'

/** The V8 flags set for the whole run (node does not accept them in NODE_OPTIONS). */
export const HEAP_FLAGS: readonly string[] = ['--semi-space-growth-factor=1', '--heap-growing-percent=10']
/** Set while the daemons start, cleared just before the first training step. */
export const STARTUP_FLAG = '--optimize-for-size'

/** Heap flags on node's command line mean the user tunes the heap: we then leave it alone. */
const USER_TUNED = ['optimize-for-size', 'semi-space', 'heap-growing-percent']

export interface HeapTuning {
  /** True when the flags were set, false when node's command line had heap flags of its own. */
  readonly tuned: boolean
  /** Call before the first training step: from then on collections favour training speed. */
  running(): void
}

/**
 * Bounds V8's heap from now on and favours a small heap until `running()`, which the daemons call
 * just before their first training round (code V8 optimises under `--optimize-for-size` keeps
 * it). Does nothing when `node` was given a heap flag of its own (`node --optimize-for-size
 * bin/gossip-learn.js start` keeps it throughout; `node --semi-space-growth-factor=2 ...`
 * measures V8's default young generation).
 */
export function tuneHeap(
  execArgv: readonly string[] = process.execArgv,
  setFlags: (flags: string) => void = setFlagsFromString,
): HeapTuning {
  const normal = execArgv.map((a) => a.replaceAll('_', '-'))
  if (normal.some((a) => USER_TUNED.some((f) => a.includes(f)))) return { tuned: false, running() {} }
  for (const flag of [...HEAP_FLAGS, STARTUP_FLAG]) setFlags(flag)
  let done = false
  return {
    tuned: true,
    running() {
      if (done) return
      done = true
      setFlags(`--no-${STARTUP_FLAG.slice(2)}`)
    },
  }
}

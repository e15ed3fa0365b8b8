/**
 * What the launcher did to glibc's malloc (bin/allocator.js runs before any module loads), told
 * to the user: a warning at start-up when it could not, and a label for `gossip_learn_info` and
 * /status. An untuned node on glibc holds 15-25 MiB more after an hour (docs/BENCHMARKS.md, Memory).
 */

/** The launcher's result (`AllocatorTuning` in bin/allocator.d.ts). */
export interface AllocatorTuning {
  readonly set: readonly string[]
  readonly reason: 'set' | 'environment' | 'unavailable' | 'refused'
  readonly glibc?: string
}

/** What the CLI passes down from the launcher. */
export interface Runtime {
  /** Absent when the CLI was not started through bin/gossip-learn.js (a test, an embedding). */
  readonly allocator?: AllocatorTuning
}

/**
 * 'tuned' (by the launcher), 'environment' (the user's MALLOC_* or GLIBC_TUNABLES), 'untuned'
 * (glibc, but koffi did not load), 'refused' (glibc refused a setting), 'not-glibc' (musl, macOS,
 * Windows: nothing to tune), 'unknown' (not started through the launcher).
 */
export type MallocState = 'tuned' | 'environment' | 'untuned' | 'refused' | 'not-glibc' | 'unknown'

/** The environment that tunes glibc as the launcher does (its ARENAS, MMAP_THRESHOLD, TRIM_THRESHOLD). */
export const MALLOC_ENV = 'MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=4194304'

export function mallocState(tuning: AllocatorTuning | undefined): MallocState {
  if (tuning === undefined) return 'unknown'
  switch (tuning.reason) {
    case 'set':
      return 'tuned'
    case 'environment':
      return 'environment'
    case 'refused':
      return 'refused'
    case 'unavailable':
      return tuning.glibc === undefined ? 'not-glibc' : 'untuned'
  }
}

/** For `start` and `host`: writes the warning, if any, and returns the state their daemons report. */
export function announceMalloc(
  tuning: AllocatorTuning | undefined,
  warn: (line: string) => void = (line) => console.error(line),
): MallocState {
  const warning = mallocWarning(tuning)
  if (warning !== undefined) warn(`gossip-learn: warning: ${warning}`)
  return mallocState(tuning)
}

/** One line for stderr when malloc could have been tuned and was not; undefined otherwise. */
export function mallocWarning(tuning: AllocatorTuning | undefined): string | undefined {
  const fix = `a node holds about 15-25 MiB more this way; starting it with ${MALLOC_ENV} in its environment tunes it as the launcher would`
  switch (mallocState(tuning)) {
    case 'untuned':
      return (
        `glibc's malloc is not tuned: the optional dependency koffi did not load ` +
        `(was the package installed with --omit=optional?): ${fix}`
      )
    case 'refused':
      return `glibc ${tuning!.glibc} refused part of the malloc tuning (set: ${tuning!.set.join(', ') || 'nothing'}): ${fix}`
    default:
      return undefined
  }
}

/** The part of glibc the launcher calls. */
export interface Glibc {
  /** gnu_get_libc_version(3), e.g. "2.36". */
  readonly version: string
  /** mallopt(3): 1 on success, 0 on error. */
  mallopt(param: number, value: number): number
}
export interface AllocatorTuning {
  /** What this call set. */
  readonly set: ReadonlyArray<'arenas' | 'mmapThreshold' | 'trimThreshold'>
  /**
   * 'set': all it wanted; 'environment': the environment set everything already; 'unavailable':
   * no glibc to call (with `glibc` set, the process runs on glibc but koffi did not load);
   * 'refused': glibc refused a setting.
   */
  readonly reason: 'set' | 'environment' | 'unavailable' | 'refused'
  /** glibc's version, when it was reached, or when it could not be reached on glibc. */
  readonly glibc?: string
}
export declare const TUNING_VARIABLES: readonly string[]
export declare const M_ARENA_MAX: number
export declare const ARENAS: number
export declare const M_MMAP_THRESHOLD: number
export declare const MMAP_THRESHOLD: number
export declare const M_TRIM_THRESHOLD: number
export declare const TRIM_THRESHOLD: number
export declare function tuneAllocator(
  env?: Record<string, string | undefined>,
  load?: () => Glibc | undefined,
  runtimeGlibc?: () => string | undefined,
): AllocatorTuning
export declare function glibcRuntime(): string | undefined
export declare function loadGlibc(): Glibc | undefined

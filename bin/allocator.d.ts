/** The part of glibc the launcher calls. */
export interface Glibc {
  /** gnu_get_libc_version(3), e.g. "2.36". */
  readonly version: string
  /** mallopt(3): 1 on success, 0 on error. */
  mallopt(param: number, value: number): number
}
export interface AllocatorTuning {
  /** True when the arena cap was set by this call. */
  readonly tuned: boolean
  /** Why not, when it was not: the environment already tunes malloc, no glibc to call, or it refused. */
  readonly reason: 'set' | 'environment' | 'unavailable' | 'refused'
  /** glibc's version, when it was reached. */
  readonly glibc?: string
}
export declare const M_ARENA_MAX: number
export declare const ARENAS: number
export declare function tuneAllocator(
  env?: Record<string, string | undefined>,
  load?: () => Glibc | undefined,
): AllocatorTuning
export declare function loadGlibc(): Glibc | undefined

// glibc's malloc, capped at two arenas from inside the process. glibc gives each thread that
// allocates an arena of its own (up to 8 per core), and V8's four helper threads run TurboFan,
// whose zones they malloc and free by the hundred megabytes while a node starts: each arena keeps
// its high-water mark, 15-22 MiB resident in all for 0.2 MiB in use (docs/BENCHMARKS.md, Memory).
// `MALLOC_ARENA_MAX=2` is the usual remedy, but it has to be in the environment before node
// starts, and a user typing `gossip-learn start` does not set it. `mallopt(M_ARENA_MAX, 2)` does
// the same if called before those threads first allocate: a thread takes its arena at its first
// malloc, and glibc fixes the limit only when it would make the ninth arena. So the launcher calls
// it first, before tsx or any module loads (plain JavaScript here for that reason).
//
// The call goes through koffi, an optional dependency with prebuilt binaries: without it, or on a
// C library other than glibc (musl, macOS, Windows), nothing is changed.
import { createRequire } from 'node:module'

/** mallopt(3) parameter: the most arenas glibc makes (M_ARENA_MAX in malloc.h). */
export const M_ARENA_MAX = -8
/** Two arenas, as `MALLOC_ARENA_MAX=2`: the main thread's and one the helper threads share. */
export const ARENAS = 2

/**
 * Caps glibc's arenas at ARENAS. Leaves malloc alone when the environment sets an arena count
 * (`MALLOC_ARENA_MAX`, or `GLIBC_TUNABLES` with `glibc.malloc.arena_max`): glibc has read it
 * already, and the user chose.
 */
export function tuneAllocator(env = process.env, load = loadGlibc) {
  if (env.MALLOC_ARENA_MAX !== undefined || /glibc\.malloc\.arena_max=/.test(env.GLIBC_TUNABLES ?? '')) {
    return { tuned: false, reason: 'environment' }
  }
  const libc = load()
  if (libc === undefined) return { tuned: false, reason: 'unavailable' }
  const ok = libc.mallopt(M_ARENA_MAX, ARENAS) === 1
  return { tuned: ok, reason: ok ? 'set' : 'refused', glibc: libc.version }
}

/** glibc through koffi, or undefined when either is missing. */
export function loadGlibc() {
  if (process.platform !== 'linux') return undefined
  try {
    const koffi = createRequire(import.meta.url)('koffi')
    const lib = koffi.load('libc.so.6')
    // musl's compatibility shims may answer to libc.so.6; only glibc has this function.
    const version = lib.func('const char *gnu_get_libc_version()')()
    const mallopt = lib.func('int mallopt(int, int)')
    return { version, mallopt }
  } catch {
    return undefined
  }
}

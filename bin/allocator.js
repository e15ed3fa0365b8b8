// glibc's malloc, tuned from inside the process. glibc gives each thread that
// allocates an arena of its own (up to 8 per core), and V8's four helper threads run TurboFan,
// whose zones they malloc and free by the hundred megabytes while a node starts: each arena keeps
// its high-water mark, 15-22 MiB resident in all for 0.2 MiB in use (docs/BENCHMARKS.md, Memory).
// `MALLOC_ARENA_MAX=2` is the usual remedy, but it has to be in the environment before node
// starts, and a user typing `gossip-learn start` does not set it. `mallopt(M_ARENA_MAX, 2)` does
// the same if called before those threads first allocate: a thread takes its arena at its first
// malloc, and glibc fixes the limit only when it would make the ninth arena. So the launcher calls
// it first, before tsx or any module loads (plain JavaScript here for that reason).
//
// The same call fixes the size from which an allocation gets its own mapping, given back when
// freed. glibc raises it to the largest block freed so far (up to 32 MiB), so after a node frees
// its first 400 KB model buffer, every later one is carved from the arena, whose high-water mark
// then grows with gossip: a daemon's main arena went from 20 to 26 MiB in 10 minutes. Fixed at
// glibc's initial 128 KiB, a few such blocks a second cost an mmap, a munmap and the page faults
// of a fresh mapping each (about 1 ms more per raw-f32 push in bench:push-cost). Fixing it
// also fixes how much free memory at the arena's top glibc keeps before it gives some back: left
// at 128 KiB, the heap shrank and grew back at every push (bench:push-cost: 3.0-3.6 ms a raw-f32
// push against 0.4-0.6); 4 MiB is about what glibc's own raising would have made it.
//
// The call goes through koffi, an optional dependency with prebuilt binaries: without it, or on a
// C library other than glibc (musl, macOS, Windows), nothing is changed.
import { createRequire } from 'node:module'

/** mallopt(3) parameter: the most arenas glibc makes (M_ARENA_MAX in malloc.h). */
export const M_ARENA_MAX = -8
/** Two arenas, as `MALLOC_ARENA_MAX=2`: the main thread's and one the helper threads share. */
export const ARENAS = 2
/** mallopt(3) parameter: the size from which a block is mapped on its own (M_MMAP_THRESHOLD). */
export const M_MMAP_THRESHOLD = -3
/** glibc's initial threshold, kept fixed instead of raised to the largest block freed. */
export const MMAP_THRESHOLD = 128 * 1024

/** mallopt(3) parameter: free memory kept at the arena's top before it is given back (M_TRIM_THRESHOLD). */
export const M_TRIM_THRESHOLD = -1
/** 4 MiB: about twice the largest block a default daemon frees (1.5 MB), as glibc's raising would set it. */
export const TRIM_THRESHOLD = 4 * 2 ** 20

/** Each setting, the environment that sets it before node starts, and the tunable's name. */
const SETTINGS = [
  { name: 'arenas', param: M_ARENA_MAX, value: ARENAS, env: 'MALLOC_ARENA_MAX', tunable: 'arena_max' },
  {
    name: 'mmapThreshold',
    param: M_MMAP_THRESHOLD,
    value: MMAP_THRESHOLD,
    env: 'MALLOC_MMAP_THRESHOLD_',
    tunable: 'mmap_threshold',
  },
  {
    name: 'trimThreshold',
    param: M_TRIM_THRESHOLD,
    value: TRIM_THRESHOLD,
    env: 'MALLOC_TRIM_THRESHOLD_',
    tunable: 'trim_threshold',
  },
]

/** The variables that tune glibc's malloc before node starts: the launcher defers to each. */
export const TUNING_VARIABLES = [...SETTINGS.map((s) => s.env), 'GLIBC_TUNABLES']

/**
 * Caps glibc's arenas at ARENAS and fixes its mmap and trim thresholds. Leaves a setting alone
 * when the environment gives it (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`,
 * `MALLOC_TRIM_THRESHOLD_`, or `GLIBC_TUNABLES` with `glibc.malloc.arena_max`, `mmap_threshold` or
 * `trim_threshold`): glibc has read it already, and the user chose. Returns what was set, and
 * the glibc version when the process runs on glibc but could not reach it (koffi missing).
 */
export function tuneAllocator(env = process.env, load = loadGlibc, runtimeGlibc = glibcRuntime) {
  const wanted = SETTINGS.filter(
    (s) => env[s.env] === undefined && !new RegExp(`glibc\\.malloc\\.${s.tunable}=`).test(env.GLIBC_TUNABLES ?? ''),
  )
  if (wanted.length === 0) return { set: [], reason: 'environment' }
  const libc = load()
  if (libc === undefined) {
    // On glibc, koffi is what is missing, and the CLI says so: the node will hold more memory.
    const glibc = runtimeGlibc()
    return glibc === undefined ? { set: [], reason: 'unavailable' } : { set: [], reason: 'unavailable', glibc }
  }
  const set = wanted.filter((s) => libc.mallopt(s.param, s.value) === 1).map((s) => s.name)
  return { set, reason: set.length === wanted.length ? 'set' : 'refused', glibc: libc.version }
}

/** The glibc this process runs on, as node reports it (about 5 ms), or undefined. */
export function glibcRuntime() {
  if (process.platform !== 'linux') return undefined
  return process.report.getReport().header?.glibcVersionRuntime
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

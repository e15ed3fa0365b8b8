import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import {
  ARENAS,
  type Glibc,
  glibcRuntime,
  loadGlibc,
  M_ARENA_MAX,
  M_MMAP_THRESHOLD,
  M_TRIM_THRESHOLD,
  MMAP_THRESHOLD,
  TRIM_THRESHOLD,
  TUNING_VARIABLES,
  tuneAllocator,
} from '../../../bin/allocator.js'

function fakeGlibc(refuse?: number): Glibc & { calls: Array<[number, number]> } {
  const calls: Array<[number, number]> = []
  return {
    version: '2.36',
    calls,
    mallopt(param, value) {
      calls.push([param, value])
      return param === refuse ? 0 : 1
    },
  }
}

/** The glibc node runs on, as node reports it (undefined on musl, macOS, Windows). */
const glibc =
  process.platform === 'linux'
    ? (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
        ?.glibcVersionRuntime
    : undefined

/** Runs `body` in a fresh node (ESM, `gc` exposed) with or without tuneAllocator() first. */
function inFreshNode(tuned: boolean, body: string): { stdout: string; stderr: string } {
  const allocator = JSON.stringify(new URL('../../../bin/allocator.js', import.meta.url).href)
  const script = `
    const { tuneAllocator } = await import(${allocator})
    if (process.argv[1] === 'tune' && tuneAllocator().reason !== 'set') throw new Error('not tuned')
    const { createRequire } = await import('node:module')
    const libc = createRequire(import.meta.url)('koffi').load('libc.so.6')
    ${body}`
  const env = { ...process.env }
  for (const name of TUNING_VARIABLES) delete env[name]
  const args = ['--expose-gc', '--input-type=module', '-e', script, tuned ? 'tune' : 'plain']
  const run = spawnSync(process.execPath, args, { env, encoding: 'utf8' })
  expect(run.status, run.stderr).toBe(0)
  return run
}

describe('tuneAllocator', () => {
  it('caps the arenas and fixes the thresholds, unless the environment already sets them', () => {
    const libc = fakeGlibc()
    const all = ['arenas', 'mmapThreshold', 'trimThreshold']
    expect(tuneAllocator({}, () => libc)).toEqual({ set: all, reason: 'set', glibc: '2.36' })
    expect(libc.calls).toEqual([
      [M_ARENA_MAX, ARENAS],
      [M_MMAP_THRESHOLD, MMAP_THRESHOLD],
      [M_TRIM_THRESHOLD, TRIM_THRESHOLD],
    ])
    const setWith = (env: Record<string, string>) => tuneAllocator(env, () => libc).set
    expect(setWith({ MALLOC_ARENA_MAX: '4' })).toEqual(['mmapThreshold', 'trimThreshold'])
    expect(setWith({ MALLOC_MMAP_THRESHOLD_: '65536' })).toEqual(['arenas', 'trimThreshold'])
    expect(setWith({ MALLOC_TRIM_THRESHOLD_: '0' })).toEqual(['arenas', 'mmapThreshold'])
    expect(setWith({ GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=8' })).toEqual([
      'mmapThreshold',
    ])
    // Other tunables set none of the three.
    expect(setWith({ GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' })).toEqual(all)
    libc.calls.length = 0
    const every = {
      MALLOC_ARENA_MAX: '2',
      GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536',
      MALLOC_TRIM_THRESHOLD_: '1',
    }
    expect(tuneAllocator(every, () => libc)).toEqual({ set: [], reason: 'environment' })
    expect(libc.calls).toEqual([])
  })

  it('reports a missing glibc or a refusal instead of failing', () => {
    const none = () => undefined
    expect(tuneAllocator({}, none, none)).toEqual({ set: [], reason: 'unavailable' })
    // On glibc without koffi: the version says what the CLI should warn about.
    expect(tuneAllocator({}, none, () => '2.36')).toEqual({
      set: [],
      reason: 'unavailable',
      glibc: '2.36',
    })
    expect(tuneAllocator({}, () => fakeGlibc(M_ARENA_MAX))).toEqual({
      set: ['mmapThreshold', 'trimThreshold'],
      reason: 'refused',
      glibc: '2.36',
    })
  })

  it('finds the glibc node runs on, for the warning when koffi is missing', () => {
    expect(glibcRuntime()).toBe(glibc)
  })

  it.runIf(glibc !== undefined)('reaches glibc through koffi where node runs on glibc', () => {
    // koffi is optional, but on glibc a missing one would silently leave malloc untuned.
    expect(loadGlibc()?.version).toBe(glibc)
  })

  it.runIf(glibc !== undefined)('keeps threads that allocate from making arenas of their own', () => {
    // Four threads allocate at once, then glibc's malloc_stats() lists the arenas on stderr.
    const arenas = (tuned: boolean) =>
      inFreshNode(
        tuned,
        `const { Worker } = await import('node:worker_threads')
        const body = 'const keep = []; for (let i = 0; i < 400; i++) keep.push(Buffer.alloc(16384)); setTimeout(() => {}, 300)'
        await Promise.all([0, 1, 2, 3].map(() => new Promise((resolve, reject) => {
          const w = new Worker(body, { eval: true })
          w.on('exit', resolve)
          w.on('error', reject)
        })))
        libc.func('void malloc_stats()')()`,
      ).stderr.match(/^Arena \d+:$/gm)?.length ?? 0
    // Untuned, each allocating thread gets an arena: the main one and the four, at least.
    expect(arenas(false)).toBeGreaterThanOrEqual(5)
    // Tuned, the four share what was there before the call.
    expect(arenas(true)).toBeLessThanOrEqual(ARENAS)
  })

  it.runIf(glibc !== undefined)(
    'gives a large block a mapping of its own after larger ones were freed',
    () => {
      // Bytes in mapped blocks (mallinfo2's hblkhd) before and after a 300 KiB buffer is made, once
      // 512 KiB buffers were made and freed: untuned, glibc raised its threshold past 300 KiB.
      // The count is process-wide and V8's threads map and unmap blocks of their own at any time
      // (CI once read -217088 tuned), so five buffers are made and one clean reading is enough.
      const mapped = (tuned: boolean) =>
        inFreshNode(
          tuned,
          `const fields = ['arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks', 'keepcost']
          const koffi = createRequire(import.meta.url)('koffi')
          const info = libc.func('mallinfo2', koffi.struct('mallinfo2', Object.fromEntries(fields.map((f) => [f, 'size_t']))), [])
          for (let i = 0; i < 3; i++) {
            Buffer.alloc(512 * 1024)
            gc()
          }
          const held = []
          const deltas = []
          for (let i = 0; i < 5; i++) {
            const before = Number(info().hblkhd)
            held.push(Buffer.alloc(300 * 1024))
            deltas.push(Number(info().hblkhd) - before)
          }
          console.log(deltas.join(','), held.length)`,
        )
          .stdout.split(' ')[0]!
          .split(',')
          .map(Number)
      const untuned = mapped(false)
      const tuned = mapped(true)
      expect(untuned).toHaveLength(5)
      // Untuned, a buffer comes from the heap: no mapping grows (exactly 0 in a reading no other thread touched).
      expect(untuned).toContain(0)
      // Tuned, each buffer is a mapping of its own.
      expect(Math.max(...tuned)).toBeGreaterThanOrEqual(300 * 1024)
    },
  )
})

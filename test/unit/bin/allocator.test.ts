import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { ARENAS, type Glibc, loadGlibc, M_ARENA_MAX, tuneAllocator } from '../../../bin/allocator.js'

function fakeGlibc(answer = 1): Glibc & { calls: Array<[number, number]> } {
  const calls: Array<[number, number]> = []
  return {
    version: '2.36',
    calls,
    mallopt(param, value) {
      calls.push([param, value])
      return answer
    },
  }
}

/** The glibc node runs on, as node reports it (undefined on musl, macOS, Windows). */
const glibc =
  process.platform === 'linux'
    ? (process.report.getReport() as { header?: { glibcVersionRuntime?: string } }).header
        ?.glibcVersionRuntime
    : undefined

describe('tuneAllocator', () => {
  it('caps the arenas unless the environment already tunes malloc', () => {
    const libc = fakeGlibc()
    expect(tuneAllocator({}, () => libc)).toEqual({ tuned: true, reason: 'set', glibc: '2.36' })
    expect(libc.calls).toEqual([[M_ARENA_MAX, ARENAS]])
    for (const env of [
      { MALLOC_ARENA_MAX: '4' },
      { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1:glibc.malloc.arena_max=8' },
    ]) {
      expect(tuneAllocator(env, () => libc)).toEqual({ tuned: false, reason: 'environment' })
    }
    expect(libc.calls).toHaveLength(1)
    // Other tunables are not an arena count.
    expect(tuneAllocator({ GLIBC_TUNABLES: 'glibc.malloc.tcache_count=0' }, () => libc).tuned).toBe(true)
  })

  it('reports a missing glibc or a refusal instead of failing', () => {
    expect(tuneAllocator({}, () => undefined)).toEqual({ tuned: false, reason: 'unavailable' })
    expect(tuneAllocator({}, () => fakeGlibc(0))).toEqual({ tuned: false, reason: 'refused', glibc: '2.36' })
  })

  it.runIf(glibc !== undefined)('reaches glibc through koffi where node runs on glibc', () => {
    // koffi is optional, but on glibc a missing one would silently leave malloc untuned.
    expect(loadGlibc()?.version).toBe(glibc)
  })

  it.runIf(glibc !== undefined)('keeps threads that allocate from making arenas of their own', () => {
    // Four threads allocate at once, then glibc's malloc_stats() lists the arenas on stderr.
    const script = `
      const { tuneAllocator } = await import(${JSON.stringify(new URL('../../../bin/allocator.js', import.meta.url).href)})
      if (process.argv[1] === 'tune' && !tuneAllocator().tuned) throw new Error('not tuned')
      const { Worker } = await import('node:worker_threads')
      const body = 'const keep = []; for (let i = 0; i < 400; i++) keep.push(Buffer.alloc(16384)); setTimeout(() => {}, 300)'
      await Promise.all([0, 1, 2, 3].map(() => new Promise((resolve, reject) => {
        const w = new Worker(body, { eval: true })
        w.on('exit', resolve)
        w.on('error', reject)
      })))
      const { createRequire } = await import('node:module')
      const koffi = createRequire(import.meta.url)('koffi')
      koffi.load('libc.so.6').func('void malloc_stats()')()`
    const env = { ...process.env }
    delete env.MALLOC_ARENA_MAX
    delete env.GLIBC_TUNABLES
    const arenas = (mode: string) => {
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script, mode], {
        env,
        encoding: 'utf8',
      })
      expect(run.status, run.stderr).toBe(0)
      return run.stderr.match(/^Arena \d+:$/gm)?.length ?? 0
    }
    const plain = arenas('plain')
    const tuned = arenas('tune')
    // Untuned, each allocating thread gets an arena: the main one and the four, at least.
    expect(plain).toBeGreaterThanOrEqual(5)
    // Tuned, the four share what was there before the call.
    expect(tuned).toBeLessThanOrEqual(ARENAS)
  })
})

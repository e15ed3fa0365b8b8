import { describe, expect, it } from 'vitest'
import { MMAP_THRESHOLD, TRIM_THRESHOLD, tuneAllocator } from '../../../bin/allocator.js'
import { type AllocatorTuning, MALLOC_ENV, mallocState, mallocWarning } from '../../../src/cli/allocator.ts'

const untuned: AllocatorTuning = { set: [], reason: 'unavailable', glibc: '2.36' }

describe('mallocState', () => {
  it('names each outcome of the launcher', () => {
    expect(mallocState(undefined)).toBe('unknown')
    expect(mallocState({ set: ['arenas'], reason: 'set', glibc: '2.36' })).toBe('tuned')
    expect(mallocState({ set: [], reason: 'environment' })).toBe('environment')
    expect(mallocState({ set: ['arenas'], reason: 'refused', glibc: '2.36' })).toBe('refused')
    expect(mallocState(untuned)).toBe('untuned')
    expect(mallocState({ set: [], reason: 'unavailable' })).toBe('not-glibc')
  })
})

describe('mallocWarning', () => {
  it('warns on glibc when koffi is missing or glibc refused, and gives the environment that fixes it', () => {
    expect(mallocWarning(untuned)).toMatch(/koffi did not load/)
    expect(mallocWarning(untuned)).toContain(MALLOC_ENV)
    const refused = mallocWarning({ set: ['mmapThreshold'], reason: 'refused', glibc: '2.36' })
    expect(refused).toMatch(/glibc 2\.36 refused .*set: mmapThreshold/)
  })

  it('says nothing when malloc is tuned, tuned by the user, or not glibc', () => {
    for (const t of [
      undefined,
      { set: ['arenas'], reason: 'set', glibc: '2.36' },
      { set: [], reason: 'environment' },
      { set: [], reason: 'unavailable' },
    ] as const) {
      expect(mallocWarning(t)).toBeUndefined()
    }
  })

  it("advises the launcher's own values, and the launcher defers to every one of them", () => {
    const env = Object.fromEntries(MALLOC_ENV.split(' ').map((kv) => kv.split('=') as [string, string]))
    expect(env).toEqual({
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: String(MMAP_THRESHOLD),
      MALLOC_TRIM_THRESHOLD_: String(TRIM_THRESHOLD),
    })
    expect(tuneAllocator(env, () => undefined).reason).toBe('environment')
  })
})

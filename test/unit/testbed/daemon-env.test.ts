import { afterEach, describe, expect, it } from 'vitest'
import { daemonEnv } from '../../../src/testbed/spawn.ts'

describe('daemonEnv', () => {
  const saved = { ...process.env }
  afterEach(() => {
    process.env = { ...saved }
  })

  it('reads the environment when a peer is spawned, not when the testbed was imported', () => {
    // bench:overhead --cpu-prof sets NODE_OPTIONS after importing the testbed.
    process.env.NODE_OPTIONS = '--import /somewhere/preload.mjs'
    expect(daemonEnv().NODE_OPTIONS).toBe('--import /somewhere/preload.mjs')
  })

  it('limits malloc arenas unless told otherwise, and never colours output', () => {
    delete process.env.MALLOC_ARENA_MAX
    process.env.FORCE_COLOR = '1'
    expect(daemonEnv()).toMatchObject({ MALLOC_ARENA_MAX: '2', FORCE_COLOR: '0' })
    process.env.MALLOC_ARENA_MAX = '4'
    expect(daemonEnv().MALLOC_ARENA_MAX).toBe('4')
  })
})

import { describe, expect, it } from 'vitest'
import { CATCH_UP_MERGES, CatchUp } from '../../../src/gossip/catch-up.ts'
import { InvalidArgumentError } from '../../../src/util/errors.ts'

describe('CatchUp', () => {
  it('does not hold a node nobody is ahead of', () => {
    const c = new CatchUp(0)
    expect(c.holding(0)).toBe(false)
    c.heard(100, 500, 10) // a peer behind us
    expect(c.holding(20)).toBe(false)
  })

  it('holds once a received model claims more training, until enough received models are merged', () => {
    const c = new CatchUp(0, { silenceMs: 1_000 })
    c.heard(900, 500, 10)
    expect(c.holding(20)).toBe(true)
    for (let i = 1; i < CATCH_UP_MERGES; i++) {
      c.mergedInputs(1)
      c.heard(900, 600, 20 + i)
      expect(c.holding(30 + i)).toBe(true)
    }
    c.mergedInputs(1)
    expect(c.holding(50)).toBe(false)
    // Caught up for good: later models from ahead do not hold it again.
    c.heard(5_000, 600, 60)
    expect(c.holding(70)).toBe(false)
  })

  it('stops holding when models stop arriving, and holds again when they resume', () => {
    const c = new CatchUp(0, { silenceMs: 1_000 })
    c.heard(900, 500, 100)
    expect(c.holding(1_099)).toBe(true)
    expect(c.holding(1_100)).toBe(false)
    c.heard(900, 500, 1_500)
    expect(c.holding(1_600)).toBe(true)
  })

  it('never holds past its bound, however many models arrive', () => {
    const c = new CatchUp(0, { maxMs: 5_000, silenceMs: 1_000 })
    c.heard(900, 500, 4_900)
    expect(c.holding(4_950)).toBe(true)
    expect(c.holding(5_000)).toBe(false)
    c.heard(900, 500, 5_100)
    expect(c.holding(5_200)).toBe(false)
  })

  it('refuses nonsense settings', () => {
    expect(() => new CatchUp(0, { merges: -1 })).toThrow(InvalidArgumentError)
    expect(() => new CatchUp(0, { merges: 1.5 })).toThrow(InvalidArgumentError)
    expect(() => new CatchUp(0, { silenceMs: 0 })).toThrow(InvalidArgumentError)
  })
})

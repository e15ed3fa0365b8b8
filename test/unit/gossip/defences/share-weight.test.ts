import { describe, expect, it } from 'vitest'
import { ShareWeights } from '../../../../src/gossip/defences/share-weight.ts'
import { InvalidArgumentError } from '../../../../src/util/errors.ts'

describe('ShareWeights', () => {
  it('weighs a sender over the median count by median / its count; typical senders 1', () => {
    const w = new ShareWeights({ windowMs: 100_000 })
    for (const s of ['a', 'b', 'c']) w.record(s, 0)
    w.record('b', 1000)
    for (let t = 0; t < 6; t++) w.record('flood', t * 1000)
    // Counts: a 1, b 2, c 1, flood 6; median of (1, 1, 2, 6) is 1.5.
    expect(w.factor('a', 10_000)).toBe(1)
    expect(w.factor('b', 10_000)).toBeCloseTo(0.75)
    expect(w.factor('flood', 10_000)).toBeCloseTo(0.25)
    // Nothing in the window: full weight.
    expect(w.factor('stranger', 10_000)).toBe(1)
  })

  it('forgets arrivals older than the window', () => {
    const w = new ShareWeights({ windowMs: 10_000 })
    w.record('a', 0)
    for (let t = 0; t < 4; t++) w.record('flood', t)
    expect(w.factor('flood', 5_000)).toBeCloseTo(0.625)
    // Past the window everything is forgotten; new arrivals count alone.
    w.record('a', 20_000)
    w.record('flood', 20_000)
    expect(w.factor('flood', 20_001)).toBe(1)
  })

  it('with one sender (or all alike) weighs nobody down', () => {
    const w = new ShareWeights()
    for (let t = 0; t < 5; t++) w.record('only', t)
    expect(w.factor('only', 10)).toBe(1)
  })

  it('refuses a window that is not a positive finite time', () => {
    expect(() => new ShareWeights({ windowMs: 0 })).toThrow(InvalidArgumentError)
    expect(() => new ShareWeights({ windowMs: Number.POSITIVE_INFINITY })).toThrow(InvalidArgumentError)
  })
})

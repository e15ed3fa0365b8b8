import { describe, expect, it } from 'vitest'
import { ShareWeights, type ShareWeightsInit } from '../../../../src/gossip/defences/share-weight.ts'
import { InvalidArgumentError } from '../../../../src/util/errors.ts'
import { createRng } from '../../../../src/util/rng.ts'

describe('ShareWeights', () => {
  it('weighs a sender over the median count by median / its count; typical senders 1', () => {
    const w = new ShareWeights({ windowMs: 100_000, tolerance: 1 })
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
    const w = new ShareWeights({ windowMs: 10_000, tolerance: 1 })
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

  it('down-weights only beyond tolerance times the median count', () => {
    const w = new ShareWeights({ windowMs: 100_000, tolerance: 1.5 })
    for (const s of ['a', 'b', 'c']) for (let t = 0; t < 2; t++) w.record(s, t)
    for (let t = 0; t < 3; t++) w.record('lucky', t)
    for (let t = 0; t < 6; t++) w.record('flood', t)
    // Counts: 2, 2, 2, 3, 6: median 2, tolerated up to 3.
    expect(w.factor('lucky', 10)).toBe(1)
    expect(w.factor('flood', 10)).toBeCloseTo(0.5)
  })

  it("counts a sender's models against its expected share, when told one", () => {
    const w = new ShareWeights({ windowMs: 100_000, tolerance: 1 })
    // A near peer of a topology-aware sampler sends 3 times what each far peer sends, as expected.
    for (const s of ['f0', 'f1', 'f2']) w.record(s, 0)
    for (let t = 0; t < 3; t++) w.record('near', t)
    for (let t = 0; t < 9; t++) w.record('flood', t)
    const shareOf = (id: string) => (id === 'near' || id === 'flood' ? 3 : 1)
    expect(w.factor('near', 10, shareOf)).toBe(1)
    // flood claims the same expected share and sends 3 times it: 9 / 3 against a median of 1.
    expect(w.factor('flood', 10, shareOf)).toBeCloseTo(1 / 3)
    // Without shares, near is down-weighted like any sender over the median count.
    expect(w.factor('near', 10)).toBeCloseTo(1 / 3)
  })

  it('refuses a window that is not a positive finite time, and a tolerance below 1', () => {
    expect(() => new ShareWeights({ windowMs: 0 })).toThrow(InvalidArgumentError)
    expect(() => new ShareWeights({ windowMs: Number.POSITIVE_INFINITY })).toThrow(InvalidArgumentError)
    expect(() => new ShareWeights({ tolerance: 0.9 })).toThrow(InvalidArgumentError)
    expect(() => new ShareWeights({ tolerance: Number.NaN })).toThrow(InvalidArgumentError)
  })

  /**
   * The defaults' reason (src/gossip/defences/constants.ts): 11 honest senders each placing a
   * model per 75 s on average at random times (the testbed's), and in the attacked case 4 more at
   * 4 times that rate; the mean factor of the inputs each kind placed over 20 simulated minutes.
   */
  function meanFactors(init: ShareWeightsInit, attackers: number): { honest: number; attacker: number } {
    const rng = createRng(7)
    const w = new ShareWeights(init)
    const senders = [
      ...Array.from({ length: 11 }, (_, i) => ({ id: `h${i}`, perS: 1 / 75, honest: true })),
      ...Array.from({ length: attackers }, (_, i) => ({ id: `a${i}`, perS: 4 / 75, honest: false })),
    ]
    const sums = { honest: [0, 0], attacker: [0, 0] }
    for (let t = 0; t < 1200; t++) {
      for (const s of senders) {
        if (rng.next() >= s.perS) continue
        w.record(s.id, t * 1000)
        // Counted after the first window, so every sender's count is a full window's.
        if (t * 1000 < (init.windowMs ?? 600_000)) continue
        const sum = sums[s.honest ? 'honest' : 'attacker']
        sum[0]! += w.factor(s.id, t * 1000)
        sum[1]!++
      }
    }
    return {
      honest: sums.honest[0]! / sums.honest[1]!,
      attacker: sums.attacker[0]! / Math.max(1, sums.attacker[1]!),
    }
  }

  it('with the defaults, random honest counts cost little weight and a 4x sender loses most of its', () => {
    const before = { windowMs: 120_000, tolerance: 1 }
    // The earlier setting penalised honest luck: an honest input weighed about three quarters.
    expect(meanFactors(before, 0).honest).toBeLessThan(0.85)
    expect(meanFactors({}, 0).honest).toBeGreaterThan(0.9)
    const attacked = meanFactors({}, 4)
    expect(attacked.honest).toBeGreaterThan(0.95)
    expect(attacked.attacker).toBeLessThan(0.45)
    expect(attacked.attacker).toBeLessThan(meanFactors(before, 4).attacker + 0.1)
  })
})

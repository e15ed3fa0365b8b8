import { describe, expect, it } from 'vitest'
import { FairShare } from '../../../../src/gossip/defences/fair-share.ts'
import { InvalidArgumentError } from '../../../../src/util/errors.ts'

describe('FairShare', () => {
  it('a new sender starts with one token, not a full bucket: a flood gets one model plus its rate', () => {
    const share = new FairShare({ burst: 3 })
    const taken = [0, 10, 20, 30].map((t) => share.take('flood', t, 1))
    expect(taken).toEqual([true, false, false, false])
    // One token per second at rate 1.
    expect(share.take('flood', 1030, 1)).toBe(true)
    expect(share.take('flood', 1040, 1)).toBe(false)
  })

  it('a quiet sender saves up to its burst, and no more', () => {
    const share = new FairShare({ burst: 3 })
    expect(share.take('quiet', 0, 1)).toBe(true)
    // 100 s at 1 token/s: the bucket holds 3, not 100.
    const bunch = [100_000, 100_001, 100_002, 100_003].map((t) => share.take('quiet', t, 1))
    expect(bunch).toEqual([true, true, true, false])
  })

  it('keeps one bucket per sender', () => {
    const share = new FairShare()
    expect(share.take('a', 0, 0.01)).toBe(true)
    expect(share.take('a', 1, 0.01)).toBe(false)
    expect(share.take('b', 2, 0.01)).toBe(true)
  })

  it('takes an initial share up to the burst, and refuses one outside it', () => {
    const share = new FairShare({ burst: 2, initial: 2 })
    expect([0, 0, 0].map((t) => share.take('x', t, 1))).toEqual([true, true, false])
    expect(() => new FairShare({ burst: 2, initial: 3 })).toThrow(InvalidArgumentError)
    expect(() => new FairShare({ initial: -1 })).toThrow(InvalidArgumentError)
    expect(() => new FairShare({ burst: 0 })).toThrow(InvalidArgumentError)
  })
})

import { describe, expect, it } from 'vitest'
import { InvalidRttError, median, RttTracker } from '../../../../src/gossip/topology/rtt.ts'

describe('median', () => {
  it('takes the middle value of an odd list and the mean of the two middle values of an even one', () => {
    expect(median([30, 10, 20])).toBe(20)
    expect(median([40, 10, 30, 20])).toBe(25)
    expect(median([7])).toBe(7)
  })
})

describe('RttTracker', () => {
  it('reports the median of the samples it holds', () => {
    const rtt = new RttTracker()
    expect(rtt.record('a', 12)).toBe(12)
    expect(rtt.record('a', 10)).toBe(11)
    expect(rtt.record('a', 500)).toBe(12)
    expect(rtt.get('a')).toBe(12)
  })

  it('ignores a single spike once it has a few samples', () => {
    const rtt = new RttTracker({ windowSize: 5 })
    for (const s of [20, 21, 19, 20]) rtt.record('a', s)
    expect(rtt.record('a', 2000)).toBe(20)
  })

  it('keeps only the last windowSize samples, so it follows a route change', () => {
    const rtt = new RttTracker({ windowSize: 3 })
    for (const s of [10, 10, 10, 80, 80]) rtt.record('a', s)
    expect(rtt.samples('a')).toEqual([10, 80, 80])
    expect(rtt.get('a')).toBe(80)
  })

  it('keeps peers apart and forgets them on request', () => {
    const rtt = new RttTracker()
    rtt.record('a', 10)
    rtt.record('b', 200)
    expect(rtt.get('a')).toBe(10)
    expect(rtt.get('b')).toBe(200)
    expect(rtt.size).toBe(2)
    expect(rtt.forget('a')).toBe(true)
    expect(rtt.forget('a')).toBe(false)
    expect(rtt.get('a')).toBeUndefined()
    expect(rtt.samples('a')).toEqual([])
    expect(rtt.peers()).toEqual(['b'])
    rtt.clear()
    expect(rtt.size).toBe(0)
  })

  it('returns a copy of the samples', () => {
    const rtt = new RttTracker()
    rtt.record('a', 10)
    const copy = rtt.samples('a') as number[]
    copy.push(999)
    expect(rtt.samples('a')).toEqual([10])
  })

  it('rejects non-finite, negative and absurd samples without recording them', () => {
    const rtt = new RttTracker({ maxRttMs: 1000 })
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1, 1001]) {
      expect(() => rtt.record('a', bad)).toThrow(expect.objectContaining({ name: InvalidRttError.name }))
    }
    expect(rtt.get('a')).toBeUndefined()
    expect(rtt.record('a', 0)).toBe(0)
  })

  it('rejects a window that is not a positive integer', () => {
    for (const windowSize of [0, -1, 2.5]) {
      expect(() => new RttTracker({ windowSize })).toThrow(
        expect.objectContaining({ name: 'InvalidArgumentError' }),
      )
    }
  })
})

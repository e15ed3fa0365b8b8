import { describe, expect, it } from 'vitest'
import { createRng, hashSeed } from '../../../src/util/rng.ts'

const N = 50_000

function moments(draw: () => number, n = N): { mean: number; variance: number } {
  let sum = 0
  let sq = 0
  for (let i = 0; i < n; i++) {
    const v = draw()
    sum += v
    sq += v * v
  }
  const mean = sum / n
  return { mean, variance: sq / n - mean * mean }
}

describe('createRng', () => {
  it('reproduces a stream from its seed', () => {
    const a = createRng(42)
    const b = createRng(42)
    const seqA = Array.from({ length: 100 }, () => a.next())
    const seqB = Array.from({ length: 100 }, () => b.next())
    expect(seqA).toEqual(seqB)
    expect(a.normal()).toBe(b.normal())
    expect(a.gamma(0.5)).toBe(b.gamma(0.5))
    expect(a.shuffle([1, 2, 3, 4, 5, 6, 7, 8])).toEqual(b.shuffle([1, 2, 3, 4, 5, 6, 7, 8]))
  })

  it('gives different streams for different seeds (including adjacent ones)', () => {
    const first = (seed: number) => Array.from({ length: 8 }, createRng(seed).next)
    expect(first(1)).not.toEqual(first(2))
    expect(first(0)).not.toEqual(first(1))
    expect(first(0xffffffff)).not.toEqual(first(0))
  })

  it('hashes non-integer and out-of-range seeds deterministically', () => {
    expect(createRng(1.5).next()).toBe(createRng(1.5).next())
    expect(createRng(-3).next()).toBe(createRng(-3).next())
    expect(createRng(1.5).next()).not.toBe(createRng(2.5).next())
  })

  it('next() is uniform on [0, 1)', () => {
    const rng = createRng(7)
    let min = 1
    let max = 0
    const { mean, variance } = moments(() => {
      const v = rng.next()
      min = Math.min(min, v)
      max = Math.max(max, v)
      return v
    })
    expect(min).toBeGreaterThanOrEqual(0)
    expect(max).toBeLessThan(1)
    expect(mean).toBeCloseTo(0.5, 2)
    expect(variance).toBeCloseTo(1 / 12, 2)
  })

  it('normal() has mean 0 and variance 1', () => {
    const rng = createRng(8)
    const { mean, variance } = moments(rng.normal)
    expect(Math.abs(mean)).toBeLessThan(0.02)
    expect(Math.abs(variance - 1)).toBeLessThan(0.03)
  })

  it.each([0.1, 0.5, 1, 3, 10])('gamma(%f) has mean and variance equal to its shape', (shape) => {
    const rng = createRng(9)
    const { mean, variance } = moments(() => rng.gamma(shape))
    expect(Math.abs(mean - shape) / shape).toBeLessThan(0.04)
    expect(Math.abs(variance - shape) / shape).toBeLessThan(0.1)
  })

  it('int(n) covers [0, n) evenly', () => {
    const rng = createRng(10)
    const counts = new Array(7).fill(0)
    for (let i = 0; i < 70_000; i++) counts[rng.int(7)]++
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500)
  })

  it('shuffle returns a permutation with every position mixed', () => {
    const rng = createRng(11)
    const firstCounts = new Array(5).fill(0)
    for (let t = 0; t < 5000; t++) {
      const arr = rng.shuffle([0, 1, 2, 3, 4])
      expect([...arr].sort()).toEqual([0, 1, 2, 3, 4])
      firstCounts[arr[0]]++
    }
    for (const c of firstCounts) expect(Math.abs(c - 1000)).toBeLessThan(150)
  })

  it('rejects bad arguments', () => {
    const rng = createRng(12)
    expect(() => rng.int(0)).toThrow(RangeError)
    expect(() => rng.int(2.5)).toThrow(RangeError)
    expect(() => rng.gamma(0)).toThrow(RangeError)
    expect(() => rng.gamma(Number.NaN)).toThrow(RangeError)
  })
})

describe('hashSeed', () => {
  it('is deterministic and separates its inputs', () => {
    expect(hashSeed('train', 'peer-a')).toBe(hashSeed('train', 'peer-a'))
    expect(hashSeed('train', 'peer-a')).not.toBe(hashSeed('train', 'peer-b'))
    expect(hashSeed('ab', 'c')).not.toBe(hashSeed('a', 'bc'))
    expect(hashSeed(1)).not.toBe(hashSeed('1'))
    const s = hashSeed('x')
    expect(Number.isInteger(s) && s >= 0 && s < 2 ** 32).toBe(true)
  })
})

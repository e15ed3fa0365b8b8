import { describe, expect, it } from 'vitest'
import { weightedAverage } from '../../../src/merge/average.ts'
import { correctVariance, meanVariance, scaleToVariance } from '../../../src/merge/varcorr.ts'
import { createRng } from '../../../src/util/rng.ts'
import { randomState, snapshot } from './fixtures.ts'

function randomValues(n: number, seed: number, mean: number, sd: number): Float32Array {
  const rng = createRng(seed)
  return Float32Array.from({ length: n }, () => mean + sd * rng.normal())
}

describe('scaleToVariance', () => {
  it('hits the target exactly with epsilon 0 and keeps the mean', () => {
    for (const [target, seed] of [
      [0.002, 1],
      [0.5, 2],
      [1e-6, 3],
    ] as const) {
      const v = randomValues(5000, seed, 0.3, 0.05)
      const before = meanVariance(v)
      const out = meanVariance(scaleToVariance(v, target, 0))
      expect(out.variance / target).toBeCloseTo(1, 5)
      expect(out.mean).toBeCloseTo(before.mean, 6)
    }
  })

  it('with the default epsilon lands within epsilon of the target, between it and the start', () => {
    const v = randomValues(5000, 4, -0.1, Math.sqrt(0.001))
    const start = meanVariance(v).variance
    const target = 0.002
    const got = meanVariance(scaleToVariance(v, target)).variance
    expect(Math.abs(got - target)).toBeLessThan(1e-4)
    expect(got).toBeGreaterThan(start)
    expect(got).toBeLessThan(target)
  })

  it('leaves size-1 tensors and constant tensors with a zero target alone', () => {
    expect(Array.from(scaleToVariance(Float32Array.of(3), 5))).toEqual([3])
    expect(Array.from(scaleToVariance(Float32Array.of(2, 2, 2), 0))).toEqual([2, 2, 2])
  })

  it('refuses a negative target', () => {
    expect(() => scaleToVariance(Float32Array.of(1, 2), -1)).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
  })
})

describe('correctVariance', () => {
  const arch = { kind: 'mlp', hidden: 64 } as const
  const a = randomState(arch, 1)
  const b = randomState(arch, 2)
  // Make the inputs' variances differ so the targets are distinguishable.
  for (const t of b.tensors) for (let k = 0; k < t.values.length; k++) t.values[k] *= 2
  const weights = [0.25, 0.75]
  const merged = weightedAverage([a, b], weights, 0)
  const v = (s: typeof a, i: number) => meanVariance(s.tensors[i]!.values)

  it("default: each kernel's variance goes to the weighted mean of the inputs', means kept, biases untouched", () => {
    const before = [snapshot(a), snapshot(b), snapshot(merged)]
    const out = correctVariance(merged, [a, b], weights, { epsilon: 0 })
    expect([snapshot(a), snapshot(b), snapshot(merged)]).toEqual(before)
    for (let i = 0; i < out.tensors.length; i++) {
      const t = out.tensors[i]!
      if (t.shape.length === 1) {
        expect(t.values).toEqual(merged.tensors[i]!.values)
        continue
      }
      const target = 0.25 * v(a, i).variance + 0.75 * v(b, i).variance
      // Averaging uncorrelated tensors lost variance: the correction must restore it.
      expect(v(merged, i).variance).toBeLessThan(0.9 * target)
      expect(v(out, i).variance / target).toBeCloseTo(1, 5)
      expect(v(out, i).mean).toBeCloseTo(v(merged, i).mean, 6)
    }
  })

  it('target local, blend, and biases on', () => {
    const local = correctVariance(merged, [a, b], weights, { epsilon: 0, target: 'local', biases: true })
    const blend = correctVariance(merged, [a, b], weights, { epsilon: 0, target: { blend: 0.5 } })
    for (let i = 0; i < merged.tensors.length; i++) {
      expect(v(local, i).variance / v(a, i).variance).toBeCloseTo(1, 5)
      if (merged.tensors[i]!.shape.length === 1) continue
      const inputs = 0.25 * v(a, i).variance + 0.75 * v(b, i).variance
      expect(v(blend, i).variance / (0.5 * v(a, i).variance + 0.5 * inputs)).toBeCloseTo(1, 5)
    }
    expect(() => correctVariance(merged, [a, b], weights, { target: { blend: 2 } })).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
  })
})

import { describe, expect, it } from 'vitest'
import {
  ageWeights,
  averageByAge,
  mergedAge,
  scaleWeights,
  weightedAverage,
} from '../../../src/merge/average.ts'
import { composePipeline } from '../../../src/merge/pipeline.ts'
import { averageStep } from '../../../src/merge/steps/average.ts'
import type { ModelState } from '../../../src/model/types.ts'
import { randomState, snapshot } from './fixtures.ts'

const withAge = (s: ModelState, age: number): ModelState => ({ ...s, age })

describe('ageWeights', () => {
  const base = randomState({ kind: 'mlp', hidden: 4 }, 1)

  it('gives a received model a = t_r / (t + t_r)', () => {
    expect(ageWeights([withAge(base, 300), withAge(base, 100)])).toEqual([0.75, 0.25])
    expect(ageWeights([withAge(base, 0), withAge(base, 50)])).toEqual([0, 1])
  })

  it('uses a = 0.5 (uniform) when every age is 0', () => {
    expect(ageWeights([withAge(base, 0), withAge(base, 0)])).toEqual([0.5, 0.5])
    expect(ageWeights([base, base, base, base])).toEqual([0.25, 0.25, 0.25, 0.25])
  })

  it('weighs several received models by age in one mean', () => {
    const w = ageWeights([withAge(base, 100), withAge(base, 100), withAge(base, 200)])
    expect(w).toEqual([0.25, 0.25, 0.5])
  })

  it('refuses negative or non-finite ages', () => {
    for (const age of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => ageWeights([base, withAge(base, age)])).toThrow(
        expect.objectContaining({ name: 'InvalidArgumentError' }),
      )
    }
  })
})

describe('scaleWeights and input weights', () => {
  const base = randomState({ kind: 'mlp', hidden: 4 }, 1)

  it('multiplies and renormalises; factors of 1 change nothing', () => {
    expect(scaleWeights([0.5, 0.5], [1, 1])).toEqual([0.5, 0.5])
    const w = scaleWeights([0.5, 0.25, 0.25], [1, 0.5, 1])
    expect(w[0]).toBeCloseTo(0.5 / 0.875)
    expect(w[1]).toBeCloseTo(0.125 / 0.875)
    expect(w[2]).toBeCloseTo(0.25 / 0.875)
  })

  it('refuses a factor outside (0, 1] or a count that does not match', () => {
    for (const f of [0, -1, 1.5, Number.NaN]) expect(() => scaleWeights([0.5, 0.5], [1, f])).toThrow()
    expect(() => scaleWeights([0.5, 0.5], [1])).toThrow()
  })

  it("the average step applies an input's weight: a quarter-weight input moves the local model a quarter as far", () => {
    const pipeline = composePipeline([{ name: 'average', definition: averageStep }], { seed: 1 })
    const local = withAge(base, 100)
    const other = withAge(randomState({ kind: 'mlp', hidden: 4 }, 2), 100)
    const full = pipeline.merge(local, [other]).state
    const quarter = pipeline.merge(local, [{ ...other, weight: 0.25 }]).state
    const v = (s: ModelState) => s.tensors[0]!.values[0]!
    const l = v(local)
    // Full weight: halfway (1/2); a quarter: 0.25 / 1.25 = 1/5 of the way.
    expect(v(full) - l).toBeCloseTo((v(other) - l) / 2, 5)
    expect(v(quarter) - l).toBeCloseTo((v(other) - l) / 5, 5)
  })
})

describe('weightedAverage / averageByAge', () => {
  const arch = { kind: 'mlp', hidden: 8 } as const

  it('computes (1 - a) local + a received element-wise, with age max(t, t_r)', () => {
    const local = randomState(arch, 1, 100)
    const received = randomState(arch, 2, 300)
    const before = [snapshot(local), snapshot(received)]
    const out = averageByAge(local, [received])
    expect([snapshot(local), snapshot(received)]).toEqual(before)
    expect(out.age).toBe(300)
    expect(out.arch).toBe(local.arch)
    for (let t = 0; t < out.tensors.length; t++) {
      const x = local.tensors[t]!.values
      const y = received.tensors[t]!.values
      const z = out.tensors[t]!.values
      for (let k = 0; k < z.length; k++) expect(z[k]).toBeCloseTo(0.25 * x[k]! + 0.75 * y[k]!, 6)
    }
  })

  it('averaging copies of a state returns the state', () => {
    const s = randomState(arch, 3, 7)
    const out = weightedAverage([s, s, s], [0.2, 0.3, 0.5], mergedAge([s, s, s]))
    expect(snapshot(out)).toEqual(snapshot(s))
  })

  it('refuses mismatched layouts', () => {
    const a = randomState(arch, 1)
    const b = randomState({ kind: 'mlp', hidden: 9 }, 1)
    expect(() => averageByAge(a, [b])).toThrow(expect.objectContaining({ name: 'ArchMismatchError' }))
  })
})

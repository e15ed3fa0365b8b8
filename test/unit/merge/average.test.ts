import { describe, expect, it } from 'vitest'
import { ageWeights, averageByAge, mergedAge, weightedAverage } from '../../../src/merge/average.ts'
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

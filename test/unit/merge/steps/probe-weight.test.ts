import { describe, expect, it } from 'vitest'
import {
  DEFAULT_PROBE_WEIGHT_FLOOR,
  DEFAULT_PROBE_WEIGHT_POWER,
  DEFAULT_PROBE_WEIGHT_REPORT,
  MERGE_REASONS,
} from '../../../../src/merge/constants.ts'
import { createMergePipeline } from '../../../../src/merge/index.ts'
import type { MergeInput } from '../../../../src/merge/pipeline.ts'
import {
  chanceAccuracy,
  probeWeightFactor,
  probeWeightStep,
} from '../../../../src/merge/steps/probe-weight.ts'
import type { ModelState } from '../../../../src/model/types.ts'
import { InvalidArgumentError } from '../../../../src/util/errors.ts'

const DEFAULTS = {
  power: DEFAULT_PROBE_WEIGHT_POWER,
  floor: DEFAULT_PROBE_WEIGHT_FLOOR,
  report: DEFAULT_PROBE_WEIGHT_REPORT,
}

/** One tensor of one value; the fake probe reads the state's accuracy from `acc`. */
const state = (value: number, age = 10): ModelState => ({
  arch: 'fake',
  age,
  tensors: [{ name: 'w', shape: [1], values: Float32Array.of(value) }],
})
const accuracies = new Map<number, number>()
const probe = (s: ModelState): number => accuracies.get(s.tensors[0]!.values[0]!) ?? Number.NaN

describe('probeWeightFactor', () => {
  it('weighs an input by its accuracy above chance over the local model`s, squared', () => {
    // Ten classes: chance 0.1. Ours scores 0.9; an input at 0.5 is half as far above chance.
    expect(probeWeightFactor(0.5, 0.9, 0.1, DEFAULTS)).toBeCloseTo(0.25, 9)
    expect(probeWeightFactor(0.8, 0.9, 0.1, DEFAULTS)).toBeCloseTo((0.7 / 0.8) ** 2, 9)
    expect(probeWeightFactor(0.5, 0.9, 0.1, { ...DEFAULTS, power: 1 })).toBeCloseTo(0.5, 9)
  })

  it('never weighs an input up: as good as ours or better is 1', () => {
    expect(probeWeightFactor(0.9, 0.9, 0.1, DEFAULTS)).toBe(1)
    expect(probeWeightFactor(0.95, 0.9, 0.1, DEFAULTS)).toBe(1)
  })

  it('keeps the floor for an input at or below chance, and for a non-finite accuracy', () => {
    expect(probeWeightFactor(0.1, 0.9, 0.1, DEFAULTS)).toBe(DEFAULT_PROBE_WEIGHT_FLOOR)
    expect(probeWeightFactor(0.02, 0.9, 0.1, DEFAULTS)).toBe(DEFAULT_PROBE_WEIGHT_FLOOR)
    expect(probeWeightFactor(Number.NaN, 0.9, 0.1, DEFAULTS)).toBe(DEFAULT_PROBE_WEIGHT_FLOOR)
    expect(probeWeightFactor(0.11, 0.9, 0.1, DEFAULTS)).toBe(DEFAULT_PROBE_WEIGHT_FLOOR)
  })

  it('judges nothing while the local model is at chance: early in training every input weighs 1', () => {
    expect(probeWeightFactor(0.05, 0.1, 0.1, DEFAULTS)).toBe(1)
    expect(probeWeightFactor(0.3, 0.08, 0.1, DEFAULTS)).toBe(1)
    expect(probeWeightFactor(0.3, Number.NaN, 0.1, DEFAULTS)).toBe(1)
  })

  it('chance is one over the classes', () => {
    expect(chanceAccuracy(10)).toBeCloseTo(0.1, 12)
    expect(() => chanceAccuracy(0)).toThrow(InvalidArgumentError)
    expect(() => chanceAccuracy(2.5)).toThrow(InvalidArgumentError)
  })
})

describe('probe-weight step', () => {
  const input = (value: number, weight?: number): MergeInput => ({
    index: 0,
    state: state(value),
    ...(weight === undefined ? {} : { weight }),
  })

  it('multiplies the weight an input already has, and reports a factor below the report level', () => {
    accuracies.set(0, 0.9).set(1, 0.8).set(2, 0.3)
    const step = probeWeightStep.create({ seed: 1, probe: { accuracy: probe, chance: 0.1 } })
    const local = state(0)
    // 0.8 on our probe against our 0.9: (0.7 / 0.8)^2 = 0.77, above the report level: a quiet accept.
    const near = step(local, input(1, 0.5))
    expect(near.action).toBe('accept')
    if (near.action === 'reject') throw new Error('unreachable')
    expect(near.input.weight).toBeCloseTo(0.5 * (0.7 / 0.8) ** 2, 9)
    // 0.3: (0.2 / 0.8)^2 = 0.0625, a down-weighting the peer policy hears of.
    const weak = step(local, input(2))
    expect(weak).toMatchObject({ action: 'clip', reason: MERGE_REASONS.probeWeighted })
    if (weak.action === 'reject') throw new Error('unreachable')
    expect(weak.input.weight).toBeCloseTo(0.0625, 9)
    // As good as ours: passed on untouched (same object).
    const same = input(0)
    expect(step(local, same)).toEqual({ action: 'accept', input: same })
  })

  it('probes the local model once per merge, however many inputs', () => {
    accuracies.set(0, 0.9).set(1, 0.8)
    let calls = 0
    const counting = (s: ModelState) => {
      calls++
      return probe(s)
    }
    const step = probeWeightStep.create({ seed: 1, probe: { accuracy: counting, chance: 0.1 } })
    const local = state(0)
    for (let i = 0; i < 3; i++) step(local, input(1))
    expect(calls).toBe(1 + 3)
  })

  it('passes every input unchanged without a probe, or with power 0', () => {
    accuracies.set(0, 0.9).set(2, 0.3)
    for (const init of [{ seed: 1 }, { seed: 1, probe: { accuracy: probe }, probeWeight: { power: 0 } }]) {
      const step = probeWeightStep.create(init)
      const i = input(2)
      expect(step(state(0), i)).toEqual({ action: 'accept', input: i })
    }
  })

  it('refuses options out of range', () => {
    for (const probeWeight of [
      { power: -1 },
      { power: Number.NaN },
      { floor: 0 },
      { floor: 1.5 },
      { report: 2 },
    ]) {
      expect(() => probeWeightStep.create({ seed: 1, probe: { accuracy: probe }, probeWeight })).toThrow(
        InvalidArgumentError,
      )
    }
  })

  it('in a pipeline, a weak input moves the local model less than a good one', () => {
    // Local 0 scores 0.9; input 1 scores 0.9 too, input 2 (value 10) scores 0.5: weight 0.25.
    accuracies.set(0, 0.9).set(1, 0.9).set(10, 0.5)
    const pipeline = createMergePipeline({
      mode: 'probe-weight,average',
      probe: { accuracy: probe, chance: 0.1 },
    })
    const good = pipeline.merge(state(0), [{ ...state(10), tensors: state(1).tensors }])
    // Same ages: the good input weighs as much as ours.
    expect(good.state.tensors[0]!.values[0]).toBeCloseTo(0.5, 6)
    const weak = pipeline.merge(state(0), [state(10)])
    // Weights 1 : 0.25 -> 10 * 0.25 / 1.25.
    expect(weak.state.tensors[0]!.values[0]).toBeCloseTo(2, 6)
    expect(weak.outcomes).toEqual([
      { index: 0, action: 'clipped', step: 'probe-weight', reason: MERGE_REASONS.probeWeighted },
    ])
  })
})

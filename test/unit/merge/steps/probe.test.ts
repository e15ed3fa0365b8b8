import { describe, expect, it } from 'vitest'
import {
  DEFAULT_PROBE_LOCAL_RATIO,
  DEFAULT_PROBE_MIN_HISTORY,
  DEFAULT_PROBE_RATIO,
  DEFAULT_REWARM_AFTER_REJECTS,
  MERGE_REASONS,
} from '../../../../src/merge/constants.ts'
import { createMergePipeline } from '../../../../src/merge/index.ts'
import type { MergeInput } from '../../../../src/merge/pipeline.ts'
import { ProbeHistory, probeStep } from '../../../../src/merge/steps/probe.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import { InvalidArgumentError } from '../../../../src/util/errors.ts'
import { randomState } from '../fixtures.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 8 }

/** A state whose "accuracy" on the fake probe is its age (the probe reads it back). */
const withAccuracy = (acc: number): ModelState => ({ arch: 'fake', age: acc, tensors: [] })
const input = (acc: number, index = 0): MergeInput => ({ index, state: withAccuracy(acc) })
const probe = (s: ModelState) => s.age

describe('probe step', () => {
  it('refuses nothing until it has seen enough inputs: early in training the bar is 0', () => {
    const h = new ProbeHistory(probe)
    for (let i = 0; i < DEFAULT_PROBE_MIN_HISTORY; i++) {
      expect(h.bar()).toBe(0)
      expect(h.judge(input(i === 3 ? 0 : 0.1)).action).toBe('accept')
    }
  })

  it('refuses an input below a fraction of the median recent accuracy, accepts a weaker honest one', () => {
    const h = new ProbeHistory(probe)
    for (let i = 0; i < DEFAULT_PROBE_MIN_HISTORY; i++) h.judge(input(0.8 + 0.01 * (i % 3)))
    expect(h.bar()).toBeCloseTo(DEFAULT_PROBE_RATIO * 0.81, 6)
    // Random weights (near chance on ten classes), a label-flipped model, a third of the median: refused.
    expect(h.judge(input(0.1))).toEqual({ action: 'reject', reason: MERGE_REASONS.probeLow })
    expect(h.judge(input(0.02))).toEqual({ action: 'reject', reason: MERGE_REASONS.probeLow })
    expect(h.judge(input(0.27))).toEqual({ action: 'reject', reason: MERGE_REASONS.probeLow })
    // A neighbour with a skewed share that scores 0.5 on our data: merged.
    expect(h.judge(input(0.5)).action).toBe('accept')
    // A non-finite accuracy never passes.
    expect(h.judge(input(Number.NaN)).action).toBe('reject')
  })

  it('attackers, even most of the inputs, cannot lower the bar: refused inputs stay out of the median', () => {
    const h = new ProbeHistory(probe)
    for (let i = 0; i < DEFAULT_PROBE_MIN_HISTORY; i++) h.judge(input(0.9))
    // Three attackers' models for every honest one.
    for (let i = 0; i < 40; i++) h.judge(input(i % 4 === 0 ? 0.9 : 0.05))
    expect(h.bar()).toBeCloseTo(DEFAULT_PROBE_RATIO * 0.9, 6)
  })

  it('drops a bar that no longer fits after a run of refusals with nothing accepted', () => {
    const h = new ProbeHistory(probe)
    for (let i = 0; i < DEFAULT_PROBE_MIN_HISTORY; i++) h.judge(input(0.9))
    // Everyone we hear from now scores 0.3 on our data (our share changed, say): refused for a while...
    for (let i = 0; i < DEFAULT_REWARM_AFTER_REJECTS; i++) expect(h.judge(input(0.3)).action).toBe('reject')
    // ...then the history starts again and they are merged.
    expect(h.bar()).toBe(0)
    expect(h.judge(input(0.3)).action).toBe('accept')
  })

  it('never sets the bar below a fraction of our own accuracy: the warm-up and a dropped history hold', () => {
    const h = new ProbeHistory(probe)
    const ours = withAccuracy(0.9)
    // No history yet, but our model scores 0.9: random weights (0.1) are refused, a weaker honest model passes.
    expect(h.bar(ours)).toBeCloseTo(DEFAULT_PROBE_LOCAL_RATIO * 0.9, 6)
    expect(h.judge(input(0.1), ours)).toEqual({ action: 'reject', reason: MERGE_REASONS.probeLow })
    expect(h.judge(input(0.5), ours).action).toBe('accept')
    // Early in training our own model is near chance, and so is the bar.
    expect(h.judge(input(0.1), withAccuracy(0.12)).action).toBe('accept')
  })

  it('accepts every input when the node gives no probe function (simulations, other callers)', () => {
    const step = probeStep.create({ seed: 1 })
    const local = randomState(MLP, 1, 100)
    for (let i = 0; i < 20; i++) expect(step(local, input(i === 10 ? 0 : 0.9)).action).toBe('accept')
  })

  it('runs first in the robust pipeline and refuses a useless model before any averaging', () => {
    const local = randomState(MLP, 1, 100)
    // The fake probe reads a state's age: age 7 marks the useless model.
    const pipeline = createMergePipeline({
      mode: 'robust',
      seed: 1,
      probe: { accuracy: (s) => (s.age === 7 ? 0.1 : 0.9), minHistory: 2 },
    })
    for (let i = 0; i < 3; i++) pipeline.merge(local, [randomState(MLP, 2 + i, 100)])
    const { state, outcomes } = pipeline.merge(local, [randomState(MLP, 99, 7)])
    expect(outcomes[0]).toMatchObject({ action: 'rejected', step: 'probe', reason: MERGE_REASONS.probeLow })
    expect(state.tensors.map((t) => [...t.values])).toEqual(local.tensors.map((t) => [...t.values]))
  })

  it('refuses nonsense options', () => {
    expect(() => new ProbeHistory(probe, { ratio: 0 })).toThrow(InvalidArgumentError)
    expect(() => new ProbeHistory(probe, { ratio: 1.5 })).toThrow(InvalidArgumentError)
    expect(() => new ProbeHistory(probe, { window: 0 })).toThrow(InvalidArgumentError)
    expect(() => new ProbeHistory(probe, { window: 4, minHistory: 8 })).toThrow(InvalidArgumentError)
  })
})

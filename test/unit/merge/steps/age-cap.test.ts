import { describe, expect, it } from 'vitest'
import { MERGE_REASONS } from '../../../../src/merge/constants.ts'
import { createMergePipeline } from '../../../../src/merge/merger.ts'
import { ageCapStep } from '../../../../src/merge/steps/age-cap.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import { randomState } from '../fixtures.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 8 }
const local = randomState(MLP, 1, 100)
const other = (age: number): ModelState => randomState(MLP, 2, age)
const cap = ageCapStep.create({ seed: 0 })

describe('age-cap step', () => {
  it('leaves an age at or below the local one alone', () => {
    for (const age of [0, 50, 100]) {
      const state = other(age)
      expect(cap(local, { index: 0, state })).toEqual({ action: 'accept', input: { index: 0, state } })
    }
  })

  it('caps an older claim at the local age, reporting it only when far above', () => {
    const near = cap(local, { index: 0, state: other(300) })
    expect(near.action).toBe('accept')
    if (near.action === 'accept') expect(near.input.state.age).toBe(100)
    const inflated = cap(local, { index: 1, state: other(1e12) })
    expect(inflated).toMatchObject({ action: 'clip', reason: MERGE_REASONS.ageCapped })
    if (inflated.action === 'clip') expect(inflated.input.state.age).toBe(100)
  })

  it('refuses an age that is not a finite count', () => {
    for (const age of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      expect(cap(local, { index: 0, state: other(age) })).toEqual({
        action: 'reject',
        reason: MERGE_REASONS.invalidAge,
      })
    }
  })

  it('an inflated age buys no more weight than the local model has, and does not spread', () => {
    const pipeline = createMergePipeline({ mode: 'age-cap,average' as never })
    const r = other(1e12)
    const { state, outcomes } = pipeline.merge(local, [r])
    expect(outcomes).toEqual([
      { index: 0, action: 'clipped', step: 'age-cap', reason: MERGE_REASONS.ageCapped },
    ])
    expect(state.age).toBe(100)
    const k = 5
    expect(state.tensors[0]!.values[k]).toBeCloseTo(
      (local.tensors[0]!.values[k]! + r.tensors[0]!.values[k]!) / 2,
      6,
    )
    // Merged again and again with 1e308-age models, the age never leaves the local one.
    let s = local
    for (let i = 0; i < 5; i++) s = pipeline.merge(s, [other(1e308), other(1e308)]).state
    expect(s.age).toBe(100)
  })

  it('takes a ratio: weight of one input at most `ratio` times the local weight', () => {
    const twice = ageCapStep.create({ seed: 0, ageCap: { ratio: 2 } })
    const v = twice(local, { index: 0, state: other(1e6) })
    expect(v.action).toBe('clip')
    if (v.action === 'clip') expect(v.input.state.age).toBe(200)
    expect(() => ageCapStep.create({ seed: 0, ageCap: { ratio: 0 } })).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
  })
})

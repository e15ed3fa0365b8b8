import { describe, expect, it } from 'vitest'
import { MERGE_REASONS } from '../../../../src/merge/constants.ts'
import { createMergePipeline } from '../../../../src/merge/merger.ts'
import { DEFAULT_MERGE_MODE, MERGE_PIPELINES } from '../../../../src/merge/registry.ts'
import { cloneState, stateDistance } from '../../../../src/model/layout.ts'
import type { ArchSpec, ModelState } from '../../../../src/model/types.ts'
import { randomState } from '../fixtures.ts'
import { norm, scaled, shifted, tensorNorms } from './helpers.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 16 }
const CNN: ArchSpec = { kind: 'cnn', hidden: 8 }

/** A pipeline of the default mode that has merged `n` honest neighbours of `local` (0.2 norms away). */
function trained(local: ModelState, n: number) {
  const pipeline = createMergePipeline({ mode: DEFAULT_MERGE_MODE, seed: 1 })
  const unit = tensorNorms(local).map((x) => 0.2 * x)
  const neighbour = (seed: number) => shifted(local, 1, seed, local.age, unit)
  for (let i = 0; i < n; i++) {
    const { outcomes } = pipeline.merge(local, [neighbour(50 + i)])
    expect(outcomes[0]!.action).toBe('merged')
  }
  return { pipeline, neighbour }
}

describe('the default pipeline (robust)', () => {
  it('is varcorr behind the distance test, clipping and the age cap', () => {
    expect(DEFAULT_MERGE_MODE).toBe('robust')
    expect(MERGE_PIPELINES.robust).toEqual(['probe', 'clip', 'age-cap', 'average', 'varcorr'])
  })

  it('returns the local model when merged with itself', () => {
    for (const arch of [MLP, CNN]) {
      const local = randomState(arch, 1, 40)
      const pipeline = createMergePipeline({ mode: DEFAULT_MERGE_MODE })
      for (const ages of [[40], [10, 0, 90], [1e12]]) {
        const copies = ages.map((age) => ({ ...cloneState(local), age }))
        const { state, outcomes } = pipeline.merge(local, copies)
        expect(stateDistance(state, local)).toBeLessThan(1e-6)
        expect(state.age).toBe(40)
        expect(outcomes.every((o) => o.action !== 'rejected')).toBe(true)
      }
    }
  })

  it.each([
    ['sign-flipped x4', -4],
    ['scaled x50', 50],
  ])('leaves the local model as it was when a %s copy arrives, in warm-up and after', (_label, factor) => {
    const local = randomState(MLP, 3, 1000)
    // Warm-up: no history yet.
    const fresh = createMergePipeline({ mode: DEFAULT_MERGE_MODE })
    const early = fresh.merge(local, [scaled(randomState(MLP, 4, 1000), factor, 1e12)])
    // Gross or not depends on the copy (a sign-flipped independent model is ~4.1 norms away, a scaled one 49).
    expect(early.outcomes[0]).toMatchObject({
      action: 'rejected',
      reason: factor === 50 ? MERGE_REASONS.distanceGross : MERGE_REASONS.distanceOutlier,
    })
    expect(stateDistance(early.state, local)).toBe(0)
    // After some honest merges: rejected, and an honest input in the same merge is still merged.
    const { pipeline, neighbour } = trained(local, 10)
    const good = neighbour(7)
    const { state, outcomes } = pipeline.merge(local, [scaled(neighbour(8), factor, 1e12), good])
    expect(outcomes.map((o) => o.action)).toEqual(['rejected', 'merged'])
    const alone = createMergePipeline({ mode: 'varcorr' }).merge(local, [good]).state
    expect(stateDistance(state, alone)).toBeLessThan(1e-5)
    expect(stateDistance(state, local)).toBeLessThan(0.2 * norm(local))
  })

  it('merging a far honest model early still moves the local model', () => {
    const local = randomState(MLP, 5, 640)
    const far = randomState(MLP, 6, 640)
    const pipeline = createMergePipeline({ mode: DEFAULT_MERGE_MODE })
    const { state, outcomes } = pipeline.merge(local, [far])
    expect(outcomes[0]!.action).not.toBe('rejected')
    // Same ages: half way (varcorr then restores the variance), as plain varcorr would.
    const reference = createMergePipeline({ mode: 'varcorr' }).merge(local, [far]).state
    expect(stateDistance(state, reference)).toBeLessThan(1e-6)
    expect(stateDistance(state, local)).toBeGreaterThan(0.3 * stateDistance(local, far))
  })
})

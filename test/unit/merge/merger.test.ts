import { describe, expect, it } from 'vitest'
import { createMerger } from '../../../src/merge/merger.ts'
import { MERGE_MODES, MERGE_PIPELINES, type MergeMode } from '../../../src/merge/registry.ts'
import { meanVariance } from '../../../src/merge/varcorr.ts'
import { cloneState, stateDistance } from '../../../src/model/layout.ts'
import { applyPermutation, permutationSpecFor } from '../../../src/model/permutation.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import { createRng } from '../../../src/util/rng.ts'
import { randomPermutations, randomState, snapshot } from './fixtures.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 32 }
const CNN: ArchSpec = { kind: 'cnn', hidden: 16 }
const withAge = (s: ModelState, age: number): ModelState => ({ ...cloneState(s), age })

describe('createMerger', () => {
  it.each(MERGE_MODES)('merging a model with copies of itself returns it (%s)', (mode) => {
    const merge = createMerger({ mode })
    for (const arch of [MLP, CNN]) {
      const local = randomState(arch, 1, 40)
      for (const copies of [
        [withAge(local, 40)],
        [withAge(local, 10), withAge(local, 0), withAge(local, 90)],
      ]) {
        const out = merge(local, copies)
        expect(stateDistance(out, local)).toBeLessThan(1e-6)
        expect(out.arch).toBe(local.arch)
        // The age cap of the robust pipelines keeps the local age; the others take the largest.
        const capped = (MERGE_PIPELINES[mode] as readonly string[]).includes('age-cap')
        expect(out.age).toBe(capped ? 40 : Math.max(40, ...copies.map((c) => c.age)))
      }
    }
  })

  it.each(MERGE_MODES)(
    'refuses mismatched architectures with ArchMismatchError, merging nothing (%s)',
    (mode) => {
      const merge = createMerger({ mode })
      const local = randomState(MLP, 1, 10)
      const good = randomState(MLP, 2, 10)
      const before = snapshot(local)
      const wider = randomState({ kind: 'mlp', hidden: 33 }, 3, 10)
      const renamed = { ...cloneState(good), arch: 'cnn-32' }
      const reshaped = cloneState(good)
      reshaped.tensors[1] = { name: 'dense_0/bias', shape: [4, 8], values: reshaped.tensors[1]!.values }
      const cnn = randomState(CNN, 4, 10)
      for (const bad of [wider, renamed, reshaped, cnn]) {
        expect(() => merge(local, [good, bad])).toThrow(
          expect.objectContaining({ name: 'ArchMismatchError' }),
        )
      }
      expect(snapshot(local)).toEqual(before)
    },
  )

  it.each(MERGE_MODES)('is pure: inputs untouched, result has fresh arrays (%s)', (mode) => {
    const merge = createMerger({ mode, seed: 5 })
    const local = randomState(CNN, 1, 10)
    const received = [randomState(CNN, 2, 20), randomState(CNN, 3, 5)]
    const before = [local, ...received].map(snapshot)
    const out = merge(local, received)
    expect([local, ...received].map(snapshot)).toEqual(before)
    for (const s of [local, ...received]) expect(out.tensors[0]!.values).not.toBe(s.tensors[0]!.values)
    expect(snapshot(merge(local, received))).toEqual(snapshot(out))
    expect(snapshot(merge(local, []))).toEqual(snapshot(local))
  })

  it('align modes undo a permutation before averaging; plain and varcorr do not', () => {
    for (const arch of [MLP, CNN]) {
      const spec = permutationSpecFor(arch)
      const local = randomState(arch, 7, 10)
      const permuted = applyPermutation(local, spec, randomPermutations(spec, createRng(8)))
      const dist = (mode: MergeMode) => stateDistance(createMerger({ mode })(local, [permuted]), local)
      expect(dist('align')).toBeLessThan(1e-6)
      expect(dist('align+varcorr')).toBeLessThan(1e-6)
      expect(dist('plain')).toBeGreaterThan(0.1)
      expect(dist('varcorr')).toBeGreaterThan(0.1)
    }
  })

  it('varcorr modes restore the kernels variance that plain averaging loses', () => {
    const local = randomState(MLP, 11, 10)
    const other = randomState(MLP, 12, 10)
    const plain = createMerger({ mode: 'plain' })(local, [other])
    const corrected = createMerger({ mode: 'varcorr', varcorr: { epsilon: 0 } })(local, [other])
    for (let i = 0; i < local.tensors.length; i++) {
      if (local.tensors[i]!.shape.length === 1) continue
      const target =
        (meanVariance(local.tensors[i]!.values).variance + meanVariance(other.tensors[i]!.values).variance) /
        2
      expect(meanVariance(plain.tensors[i]!.values).variance).toBeLessThan(0.7 * target)
      expect(meanVariance(corrected.tensors[i]!.values).variance / target).toBeCloseTo(1, 5)
    }
  })

  it('refuses unknown modes', () => {
    expect(() => createMerger({ mode: 'nope' as MergeMode })).toThrow(
      expect.objectContaining({ name: 'UnknownMergePipelineError' }),
    )
  })
})

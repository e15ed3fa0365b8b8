/**
 * Partial inputs (top-k and partial-units frames) through the merge pipeline: only carried
 * coordinates move, with the age weights, age rule, variance correction and alignment of
 * src/merge/partial.ts and match-units.ts.
 */
import { describe, expect, it } from 'vitest'
import { carriedFraction, type MaskedState, presentUnits, unionMasks } from '../../../src/merge/masks.ts'
import { matchUnits } from '../../../src/merge/match-units.ts'
import { createMergePipeline } from '../../../src/merge/merger.ts'
import { meanVariance } from '../../../src/merge/varcorr.ts'
import { applyPermutation, identity, permutationSpecFor } from '../../../src/model/permutation.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import { createRng } from '../../../src/util/rng.ts'
import { fingerprintOf, randomState, snapshot } from './fixtures.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 8 }
const SPEC = permutationSpecFor(MLP)

/** Masks carrying units `units` of the hidden layer (kernel column, bias, outgoing row) and the output bias. */
function unitMasks(units: readonly number[]): (Uint8Array | undefined)[] {
  const h = MLP.hidden
  const k0 = new Uint8Array(784 * h)
  for (let r = 0; r < 784; r++) for (const u of units) k0[r * h + u] = 1
  const b0 = new Uint8Array(h)
  for (const u of units) b0[u] = 1
  const k1 = new Uint8Array(h * 10)
  for (const u of units) k1.fill(1, u * 10, u * 10 + 10)
  return [k0, b0, k1, undefined]
}

/** `state` as a decoder delivers a partial frame: zeros where nothing was carried. */
function asReceived(state: ModelState, masks: (Uint8Array | undefined)[]): MaskedState {
  return {
    ...state,
    tensors: state.tensors.map((t, i) => {
      const m = masks[i]
      return {
        ...t,
        values: m === undefined ? t.values.slice() : t.values.map((v, k) => (m[k] === 1 ? v : 0)),
      }
    }),
    masks,
  }
}

const local = randomState(MLP, 1, 100)
const other = randomState(MLP, 2, 300)

describe('merging a partial input', () => {
  it.each(['plain', 'varcorr', 'robust'])(
    'leaves the units it did not carry exactly as they were (%s)',
    (mode) => {
      const masks = unitMasks([1, 5])
      const before = snapshot(local)
      const { state, outcomes } = createMergePipeline({ mode: mode as 'plain' }).merge(local, [
        asReceived(other, masks),
      ])
      expect(outcomes[0]!.action).not.toBe('rejected')
      expect(snapshot(local)).toEqual(before)
      state.tensors.forEach((t, i) => {
        const m = masks[i]
        let moved = 0
        t.values.forEach((v, k) => {
          if (m !== undefined && m[k] === 0) expect(v).toBe(local.tensors[i]!.values[k])
          else if (v !== local.tensors[i]!.values[k]) moved++
        })
        expect(moved).toBeGreaterThan(0)
      })
    },
  )

  it('with align, moves exactly as many local units as it carried, and leaves the others exactly', () => {
    const { state } = createMergePipeline({ mode: 'align+varcorr' }).merge(local, [
      asReceived(other, unitMasks([1, 5])),
    ])
    const h = MLP.hidden
    const untouched = Array.from({ length: h }, (_, u) => {
      const same = (i: number, k: number): boolean =>
        state.tensors[i]!.values[k] === local.tensors[i]!.values[k]
      let all = same(1, u)
      for (let r = 0; r < 784 && all; r++) all = same(0, r * h + u)
      for (let c = 0; c < 10 && all; c++) all = same(2, u * 10 + c)
      return all
    })
    expect(untouched.filter(Boolean)).toHaveLength(h - 2)
  })

  it('averages carried coordinates with the pairwise age weight a = t_r / (t + t_r)', () => {
    const masks = unitMasks([3])
    const { state } = createMergePipeline({ mode: 'plain' }).merge(local, [asReceived(other, masks)])
    const a = 300 / 400
    const k = 10 * 8 + 3 // row 10, unit 3 of dense_0/kernel
    expect(state.tensors[0]!.values[k]).toBeCloseTo(
      (1 - a) * local.tensors[0]!.values[k]! + a * other.tensors[0]!.values[k]!,
      6,
    )
    // The output bias was carried whole.
    expect(state.tensors[3]!.values[2]).toBeCloseTo(
      (1 - a) * local.tensors[3]!.values[2]! + a * other.tensors[3]!.values[2]!,
      6,
    )
  })

  it('renormalises the weights over the inputs that carried each coordinate', () => {
    const third = randomState(MLP, 3, 100)
    const { state } = createMergePipeline({ mode: 'plain' }).merge(local, [
      asReceived(other, unitMasks([0])),
      asReceived(third, unitMasks([1])),
    ])
    // Unit 0 came only from `other` (age 300): weights 100 : 300 among local and other.
    const k0 = 7 * 8 + 0
    expect(state.tensors[0]!.values[k0]).toBeCloseTo(
      0.25 * local.tensors[0]!.values[k0]! + 0.75 * other.tensors[0]!.values[k0]!,
      6,
    )
    // Unit 1 only from `third` (age 100): half and half.
    const k1 = 7 * 8 + 1
    expect(state.tensors[0]!.values[k1]).toBeCloseTo(
      0.5 * local.tensors[0]!.values[k1]! + 0.5 * third.tensors[0]!.values[k1]!,
      6,
    )
    // The output bias came from both: weights 100 : 300 : 100.
    const b = 4
    expect(state.tensors[3]!.values[b]).toBeCloseTo(
      0.2 * local.tensors[3]!.values[b]! +
        0.6 * other.tensors[3]!.values[b]! +
        0.2 * third.tensors[3]!.values[b]!,
      6,
    )
  })

  it('raises the age by the carried share of the difference, and by all of it for a whole input', () => {
    const masks = unitMasks([2, 6])
    const fraction = carriedFraction(other, masks)
    expect(fraction).toBeCloseTo((2 * (784 + 1 + 10) + 10) / (784 * 8 + 8 + 80 + 10), 10)
    const { state } = createMergePipeline({ mode: 'varcorr' }).merge(local, [asReceived(other, masks)])
    expect(state.age).toBeCloseTo(100 + fraction * 200, 9)
    // An older local model keeps its age.
    const older = { ...local, age: 500 }
    expect(createMergePipeline({ mode: 'varcorr' }).merge(older, [asReceived(other, masks)]).state.age).toBe(
      500,
    )
    expect(createMergePipeline({ mode: 'varcorr' }).merge(local, [other]).state.age).toBe(300)
  })

  it('corrects the variance of the carried coordinates only, to the inputs weighted variance there', () => {
    const masks = unitMasks([0, 1, 2, 3])
    const plain = createMergePipeline({ mode: 'plain' }).merge(local, [asReceived(other, masks)]).state
    const corrected = createMergePipeline({ mode: 'varcorr' }).merge(local, [asReceived(other, masks)]).state
    const m = masks[0]!
    const pick = (v: Float32Array): Float32Array => v.filter((_, k) => m[k] === 1)
    const target =
      0.25 * meanVariance(pick(local.tensors[0]!.values)).variance +
      0.75 * meanVariance(pick(other.tensors[0]!.values)).variance
    const got = meanVariance(pick(corrected.tensors[0]!.values)).variance
    expect(Math.abs(got - target)).toBeLessThan(1e-4 * 1.01)
    // Averaging did shrink it, so the correction had something to do.
    expect(meanVariance(pick(plain.tensors[0]!.values)).variance).toBeLessThan(0.9 * target)
  })

  it('ignores the values a frame did not carry: garbage there neither moves nor rejects anything', () => {
    const masks = unitMasks([4])
    const garbage = asReceived(other, masks)
    for (const [i, t] of garbage.tensors.entries()) {
      const mk = masks[i]
      if (mk === undefined) continue
      for (let k = 0; k < mk.length; k++) if (mk[k] === 0) t.values[k] = 1e6
    }
    const clean = createMergePipeline({ mode: 'robust' }).merge(local, [asReceived(other, masks)])
    const dirty = createMergePipeline({ mode: 'robust' }).merge(local, [garbage])
    expect(dirty.outcomes[0]!.action).toBe(clean.outcomes[0]!.action)
    expect(snapshot(dirty.state)).toEqual(snapshot(clean.state))
  })
})

describe('aligning a partial input', () => {
  const rng = createRng(7)
  const perm = Int32Array.from(rng.shuffle(Array.from(identity(MLP.hidden))))
  // The local model with its hidden units shuffled: unit j of `shuffled` is unit perm[j] of local.
  const shuffled = applyPermutation(local, SPEC, { dense_0: perm })

  it('finds which local unit each carried unit is', () => {
    const masks = unitMasks([0, 5, 6])
    const filled = createMergePipeline({ mode: 'plain' }) // only for its entry invariant, below
    expect(filled.steps).toEqual(['average'])
    const present = presentUnits(shuffled, masks, SPEC, 'dense_0')
    expect(Array.from(present)).toEqual([1, 0, 0, 0, 0, 1, 1, 0])
    const matched = matchUnits(local, asReceived(shuffled, masks), masks, SPEC)
    expect(matched.matched).toBe(3)
    for (const j of [0, 5, 6]) expect(matched.perms.dense_0![perm[j]!]).toBe(j)
    // Carried units landed on their local twins, with their masks; the rest is the local model.
    expect(snapshot(matched.state)).toEqual(snapshot(local))
    const moved = unitMasks([perm[0]!, perm[5]!, perm[6]!])
    const asArrays = (list: readonly (Uint8Array | undefined)[]) =>
      list.map((m) => (m === undefined ? m : Array.from(m)))
    expect(asArrays(matched.masks)).toEqual(asArrays(moved))
  })

  it('so merging a shuffled copy of the local model changes nothing with align, and something without', () => {
    const masks = unitMasks([2, 3])
    const input = { ...asReceived(shuffled, masks), age: 100 }
    const aligned = createMergePipeline({ mode: 'align' }).merge(local, [input]).state
    const positional = createMergePipeline({ mode: 'plain' }).merge(local, [input]).state
    for (const [i, t] of aligned.tensors.entries()) {
      for (const [k, v] of t.values.entries()) expect(v).toBeCloseTo(local.tensors[i]!.values[k]!, 6)
    }
    expect(snapshot(positional)).not.toEqual(snapshot(local))
  })

  it('matches units whose quiet rows were left out, on the rows that were received', () => {
    // Units 0, 5 and 6 without the first kernel's rows 0 and 3 (quiet inputs): the rows left
    // out of every unit alike do not make a unit absent, and their values there (ours) do not count.
    const masks = unitMasks([0, 5, 6]).map((m, i) => {
      if (i !== 0 || m === undefined) return m
      const out = m.slice()
      for (const r of [0, 3]) out.fill(0, r * MLP.hidden, (r + 1) * MLP.hidden)
      return out
    })
    expect(Array.from(presentUnits(shuffled, masks, SPEC, 'dense_0'))).toEqual([1, 0, 0, 0, 0, 1, 1, 0])
    const input = asReceived(shuffled, masks)
    // Garbage where nothing arrived would mislead a match that read it.
    const received = { ...input, tensors: input.tensors.map((t) => ({ ...t, values: t.values.slice() })) }
    for (const r of [0, 3]) received.tensors[0]!.values.fill(5, r * MLP.hidden, (r + 1) * MLP.hidden)
    const matched = matchUnits(local, received, masks, SPEC)
    expect(matched.matched).toBe(3)
    for (const j of [0, 5, 6]) expect(matched.perms.dense_0![perm[j]!]).toBe(j)
  })

  it('leaves a top-k input (no whole unit) where it is', () => {
    const masks = local.tensors.map((t) => Uint8Array.from(t.values, (_, k) => (k % 3 === 0 ? 1 : 0)))
    const matched = matchUnits(local, asReceived(other, masks), masks, SPEC)
    expect(matched.matched).toBe(0)
    expect(Array.from(matched.perms.dense_0!)).toEqual(Array.from(identity(MLP.hidden)))
  })

  it('unions masks per tensor (undefined when one input carried it whole)', () => {
    const a = [Uint8Array.of(1, 0, 0), undefined]
    const b = [Uint8Array.of(0, 0, 1), Uint8Array.of(1, 0)]
    const u = unionMasks([a, b], 2)
    expect(Array.from(u[0]!)).toEqual([1, 0, 1])
    expect(u[1]).toBeUndefined()
    expect(fingerprintOf(MLP)).toBe(local.arch)
  })
})

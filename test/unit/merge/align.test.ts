import { describe, expect, it } from 'vitest'
import { alignTo, maxAssignment, similarity } from '../../../src/merge/align.ts'
import { cloneState, stateDistance } from '../../../src/model/layout.ts'
import {
  applyPermutation,
  invertPermutation,
  isIdentity,
  permutationSpecFor,
} from '../../../src/model/permutation.ts'
import type { ArchSpec } from '../../../src/model/types.ts'
import { createRng } from '../../../src/util/rng.ts'
import { addNoise, randomPermutations, randomState, snapshot } from './fixtures.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 64 }
const CNN: ArchSpec = { kind: 'cnn', hidden: 32 }

function allPermutations(n: number): number[][] {
  if (n === 0) return [[]]
  const out: number[][] = []
  for (const p of allPermutations(n - 1))
    for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)])
  return out
}

describe('maxAssignment (munkres)', () => {
  it('finds the maximum-weight assignment (brute force, n <= 6)', () => {
    const rng = createRng(1)
    for (let trial = 0; trial < 60; trial++) {
      const n = 1 + (trial % 6)
      const sim = Float64Array.from({ length: n * n }, () => rng.normal())
      const p = maxAssignment(sim, n)
      expect([...p].sort()).toEqual([...Array(n).keys()])
      const value = (q: ArrayLike<number>) =>
        Array.from({ length: n }, (_, i) => sim[i * n + q[i]!]!).reduce((a, b) => a + b)
      const best = Math.max(...allPermutations(n).map(value))
      expect(value(p)).toBeCloseTo(best, 12)
    }
  })
})

describe('similarity', () => {
  it.each([1, 2, 3, 4, 5, 7, 8])('equals the naive product for n = %i (odd and even widths)', (n) => {
    const rng = createRng(n)
    for (const m of [7, 8]) {
      const a = Float64Array.from({ length: n * m }, () => rng.normal())
      const b = Float64Array.from({ length: n * m }, () => rng.normal())
      const s = similarity(a, b, n)
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let want = 0
          for (let f = 0; f < m; f++) want += a[i * m + f]! * b[j * m + f]!
          expect(s[i * n + j]).toBeCloseTo(want, 12)
        }
      }
    }
  })
})

describe('alignTo', () => {
  it.each([MLP, CNN, { kind: 'mlp', hidden: 256 } as ArchSpec])(
    'recovers the permutation of a permuted copy exactly, at distance 0 (%o)',
    (arch) => {
      const spec = permutationSpecFor(arch)
      const rng = createRng(2)
      for (let trial = 0; trial < 3; trial++) {
        const a = randomState(arch, 10 + trial)
        const perms = randomPermutations(spec, rng)
        const b = applyPermutation(a, spec, perms)
        const result = alignTo(a, b, spec, { seed: trial })
        for (const g of spec.groups) expect(result.perms[g.name]).toEqual(invertPermutation(perms[g.name]!))
        expect(stateDistance(a, result.state)).toBe(0)
        expect(result.skipped).toBe(false)
      }
    },
  )

  it('recovers the permutation of a noisy permuted copy (CNN)', () => {
    const spec = permutationSpecFor(CNN)
    const a = randomState(CNN, 20)
    const perms = randomPermutations(spec, createRng(21))
    const b = addNoise(applyPermutation(a, spec, perms), 0.01, 22)
    const result = alignTo(a, b, spec)
    for (const g of spec.groups) expect(result.perms[g.name]).toEqual(invertPermutation(perms[g.name]!))
  })

  it('aligning a model to itself (or a copy) is the identity, and skips the work', () => {
    for (const arch of [MLP, CNN]) {
      const spec = permutationSpecFor(arch)
      const a = randomState(arch, 30)
      for (const b of [a, cloneState(a)]) {
        const result = alignTo(a, b, spec)
        expect(result.skipped).toBe(true)
        expect(result.solves).toBe(0)
        for (const g of spec.groups) expect(isIdentity(result.perms[g.name]!)).toBe(true)
        expect(snapshot(result.state)).toEqual(snapshot(a))
        expect(result.state.tensors[0]!.values).not.toBe(a.tensors[0]!.values)
      }
    }
  })

  it('never increases the distance between two models (random pairs), and usually shrinks it', () => {
    for (const arch of [MLP, CNN]) {
      const spec = permutationSpecFor(arch)
      let shrunk = 0
      for (let trial = 0; trial < 6; trial++) {
        const a = randomState(arch, 100 + trial)
        const b = randomState(arch, 200 + trial, 5)
        const before = stateDistance(a, b)
        const result = alignTo(a, b, spec, { seed: trial })
        const after = stateDistance(a, result.state)
        expect(after).toBeLessThanOrEqual(before * (1 + 1e-12))
        if (after < before * 0.999) shrunk++
        // Same multiset of numbers per tensor: alignment only moves units around.
        expect(result.state.age).toBe(5)
        for (let t = 0; t < b.tensors.length; t++) {
          expect(Array.from(result.state.tensors[t]!.values).sort()).toEqual(
            Array.from(b.tensors[t]!.values).sort(),
          )
        }
      }
      expect(shrunk).toBeGreaterThanOrEqual(5)
    }
  })

  it('stops at a fixed point: realigning its own result changes nothing', () => {
    for (const arch of [MLP, CNN]) {
      const spec = permutationSpecFor(arch)
      const a = randomState(arch, 40)
      const first = alignTo(a, randomState(arch, 41), spec)
      const again = alignTo(a, first.state, spec, { seed: 9 })
      for (const g of spec.groups) expect(isIdentity(again.perms[g.name]!)).toBe(true)
      // The MLP has one group: a single assignment is already optimal.
      if (arch.kind === 'mlp') expect(first.solves).toBe(1)
    }
  })

  it('is deterministic for a seed and pure', () => {
    const spec = permutationSpecFor(CNN)
    const a = randomState(CNN, 50)
    const b = randomState(CNN, 51)
    const sa = snapshot(a)
    const sb = snapshot(b)
    const r1 = alignTo(a, b, spec, { seed: 3 })
    const r2 = alignTo(a, b, spec, { seed: 3 })
    expect(r1.perms).toEqual(r2.perms)
    expect(snapshot(a)).toEqual(sa)
    expect(snapshot(b)).toEqual(sb)
  })

  it('refuses mismatched architectures with ArchMismatchError', () => {
    const spec = permutationSpecFor(MLP)
    const a = randomState(MLP, 1)
    const other = randomState({ kind: 'mlp', hidden: 32 }, 2)
    expect(() => alignTo(a, other, spec)).toThrow(expect.objectContaining({ name: 'ArchMismatchError' }))
    const renamed = { ...cloneState(a), arch: 'something-else' }
    expect(() => alignTo(a, renamed, spec)).toThrow(expect.objectContaining({ name: 'ArchMismatchError' }))
  })
})

/** Constructed inputs for the robust-step tests: shifts of a local model by chosen per-tensor distances. */

import type { ModelState } from '../../../../src/model/types.ts'
import { createRng } from '../../../../src/util/rng.ts'

/** Per-tensor Euclidean norms of a state. */
export function tensorNorms(state: ModelState): number[] {
  return state.tensors.map((t) => Math.sqrt(t.values.reduce((s, v) => s + v * v, 0)))
}

/** Per-tensor Euclidean distances between two same-layout states. */
export function tensorDistances(a: ModelState, b: ModelState): number[] {
  return a.tensors.map((t, i) => {
    const y = b.tensors[i]!.values
    let s = 0
    t.values.forEach((x, k) => {
      s += (x - y[k]!) ** 2
    })
    return Math.sqrt(s)
  })
}

/** Euclidean distance over all values. */
export function distance(a: ModelState, b: ModelState): number {
  return Math.hypot(...tensorDistances(a, b))
}

/** Euclidean norm over all values. */
export function norm(state: ModelState): number {
  return Math.hypot(...tensorNorms(state))
}

/**
 * `local` moved in a random direction so that tensor i is exactly `scale * unit[i]` away (unit
 * defaults to 1 per tensor); same arch, the given age.
 */
export function shifted(local: ModelState, scale: number, seed: number, age = local.age, unit?: number[]) {
  const rng = createRng(seed)
  return {
    arch: local.arch,
    age,
    tensors: local.tensors.map((t, i) => {
      const dir = Float64Array.from(t.values, () => rng.normal())
      const n = Math.sqrt(dir.reduce((s, x) => s + x * x, 0))
      const want = scale * (unit?.[i] ?? 1)
      return {
        name: t.name,
        shape: [...t.shape],
        values: Float32Array.from(t.values, (v, k) => v + (want * dir[k]!) / n),
      }
    }),
  } satisfies ModelState
}

/** `factor * state` (values only), keeping arch and age unless given. */
export function scaled(state: ModelState, factor: number, age = state.age): ModelState {
  return {
    arch: state.arch,
    age,
    tensors: state.tensors.map((t) => ({
      name: t.name,
      shape: [...t.shape],
      values: t.values.map((v) => v * factor),
    })),
  }
}

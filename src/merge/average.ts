/**
 * Age-weighted averaging of models, as in gossip learning (Ormándi et al. 2013;
 * Hegedűs et al. 2019): a model that has seen more samples counts for more.
 */

import { assertSameLayout } from '../model/layout.ts'
import type { ModelState } from '../model/types.ts'
import { InvalidArgumentError } from '../util/errors.ts'

/**
 * Weights of the inputs of one merge, local model first: `w_k = t_k / sum t`. With one
 * received model this is `a = t_r / (t + t_r)` for the received and `1 - a` for the
 * local. Several received models are combined in one weighted mean rather than by
 * sequential pairwise merges, which would depend on their order and give the last
 * one more weight than its age says. When every age is 0 the weights are uniform.
 */
export function ageWeights(states: readonly ModelState[]): number[] {
  if (states.length === 0) throw new InvalidArgumentError('no states to weigh')
  let total = 0
  for (const s of states) {
    if (!Number.isFinite(s.age) || s.age < 0)
      throw new InvalidArgumentError(`age must be finite and >= 0, got ${s.age}`)
    total += s.age
  }
  if (total === 0) return states.map(() => 1 / states.length)
  return states.map((s) => s.age / total)
}

/**
 * `weights` times `factors` (each in (0, 1], one per weight), renormalised to sum to 1; the
 * weights themselves when every factor is 1.
 */
export function scaleWeights(weights: readonly number[], factors: readonly number[]): number[] {
  if (factors.length !== weights.length)
    throw new InvalidArgumentError(`${factors.length} factors for ${weights.length} weights`)
  if (factors.every((f) => f === 1)) return [...weights]
  for (const f of factors)
    if (!(f > 0 && f <= 1)) throw new InvalidArgumentError(`weight factor must be in (0, 1], got ${f}`)
  const scaled = weights.map((w, i) => w * factors[i]!)
  const total = scaled.reduce((a, b) => a + b, 0)
  return total > 0 ? scaled.map((w) => w / total) : [...weights]
}

/**
 * Age of a merged model: the largest input age (as gossip learning does), so
 * repeated merges of the same experience do not inflate it.
 */
export function mergedAge(states: readonly ModelState[]): number {
  let age = 0
  for (const s of states) age = Math.max(age, s.age)
  return age
}

/**
 * Element-wise weighted mean of same-layout states (accumulated in float64); the
 * result takes the first state's arch and the given age. Pure.
 */
export function weightedAverage(
  states: readonly ModelState[],
  weights: readonly number[],
  age: number,
): ModelState {
  if (states.length === 0 || states.length !== weights.length) {
    throw new InvalidArgumentError(`${states.length} states for ${weights.length} weights`)
  }
  const first = states[0]!
  for (let s = 1; s < states.length; s++) assertSameLayout(first, states[s]!)
  const tensors = first.tensors.map((t, i) => {
    const values = new Float32Array(t.values.length)
    if (states.length === 2) {
      // The common case (one received model): no float64 scratch array.
      blendTwo(values, t.values, weights[0]!, states[1]!.tensors[i]!.values, weights[1]!)
    } else {
      const acc = new Float64Array(t.values.length)
      for (let s = 0; s < states.length; s++) {
        const w = weights[s]!
        if (w !== 0) addScaled(acc, w, states[s]!.tensors[i]!.values)
      }
      values.set(acc)
    }
    return { name: t.name, shape: [...t.shape], values }
  })
  return { arch: first.arch, age, tensors }
}

// Module-level loops, not in the closure above (steps/vector.ts says why).

/** `out[k] = wx * x[k] + wy * y[k]` for every k of `out`. */
function blendTwo(out: Float32Array, x: Float32Array, wx: number, y: Float32Array, wy: number): void {
  for (let k = 0; k < out.length; k++) out[k] = wx * x[k]! + wy * y[k]!
}

/** `acc[k] += w * v[k]` for every k of `acc`. */
function addScaled(acc: Float64Array, w: number, v: Float32Array): void {
  for (let k = 0; k < acc.length; k++) acc[k] += w * v[k]!
}

/** Age-weighted average of the local model (first) and the received ones. Pure. */
export function averageByAge(local: ModelState, received: readonly ModelState[]): ModelState {
  const states = [local, ...received]
  return weightedAverage(states, ageWeights(states), mergedAge(states))
}

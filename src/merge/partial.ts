/**
 * Averaging, age and variance correction when some inputs are partial (./masks.ts).
 *
 * - Average: each coordinate is the weighted mean of the local model and the inputs
 *   that carried it, their age weights renormalised over those: with one input, a
 *   carried coordinate gets `(1 - a) * local + a * received` (a = t_r / (t + t_r)) as in
 *   a whole merge, and every other coordinate keeps its local value exactly.
 * - Age: a partial input moves the merged age towards its own in proportion to the
 *   share of coordinates it carried: `t + fraction * max(0, t_r - t)`; a whole input
 *   counts with its full age (the merged age is the largest of these, as for whole
 *   merges). A tenth of a model does not bring its sender's whole experience.
 * - Variance correction: per tensor, only the coordinates some input carried are
 *   rescaled, around their mean, to the weighted variance the merge's models have on
 *   those same coordinates; the others are left as they are.
 */

import type { ModelState } from '../model/types.ts'
import { InvalidArgumentError } from '../util/errors.ts'
import { carriedFraction, maskPositions, type TensorMasks, unionMasks } from './masks.ts'
import {
  correctVariance,
  DEFAULT_VARIANCE_EPSILON,
  meanVariance,
  type VarianceCorrectionOptions,
} from './varcorr.ts'

/**
 * Weighted mean of same-layout states (local first) where state s counts at a coordinate only
 * if its mask carries it (the local model always does); coordinates that only zero-weight
 * states carry keep the local value. Pure; the result takes the local arch and `age`.
 */
export function maskedAverage(
  states: readonly ModelState[],
  weights: readonly number[],
  masks: readonly (TensorMasks | undefined)[],
  age: number,
): ModelState {
  if (states.length === 0 || states.length !== weights.length || masks.length !== states.length) {
    throw new InvalidArgumentError(
      `${states.length} states, ${weights.length} weights, ${masks.length} masks`,
    )
  }
  const local = states[0]!
  const tensors = local.tensors.map((t, i) => {
    const n = t.values.length
    const acc = new Float64Array(n)
    const wsum = new Float64Array(n)
    states.forEach((s, j) => {
      const w = weights[j]!
      if (w !== 0) addWeighted(acc, wsum, w, s.tensors[i]!.values, j === 0 ? undefined : masks[j]?.[i])
    })
    return { name: t.name, shape: [...t.shape], values: weightedMeans(acc, wsum, t.values) }
  })
  return { arch: local.arch, age, tensors }
}

/** The merged age (module comment): the largest of the local age and each input's full or partial claim. */
export function partialMergedAge(
  states: readonly ModelState[],
  masks: readonly (TensorMasks | undefined)[],
): number {
  const local = states[0]!.age
  let age = local
  states.forEach((s, j) => {
    if (j === 0) return
    const fraction = carriedFraction(s, masks[j])
    age = Math.max(age, fraction === 1 ? s.age : local + fraction * Math.max(0, s.age - local))
  })
  return age
}

/**
 * Variance correction of `merged` (module comment): tensors some input carried whole are
 * corrected as by correctVariance; in the others only the carried coordinates move.
 */
export function correctVarianceMasked(
  merged: ModelState,
  states: readonly ModelState[],
  weights: readonly number[],
  masks: readonly (TensorMasks | undefined)[],
  options: VarianceCorrectionOptions = {},
): ModelState {
  if (states.length === 0 || states.length !== weights.length) {
    throw new InvalidArgumentError(`${states.length} inputs for ${weights.length} weights`)
  }
  const union = unionMasks(masks.slice(1), merged.tensors.length)
  const target = options.target ?? 'inputs'
  const blend = target === 'inputs' ? 0 : target === 'local' ? 1 : target.blend
  if (!(blend >= 0 && blend <= 1)) throw new InvalidArgumentError(`blend must be in [0, 1], got ${blend}`)
  const epsilon = options.epsilon ?? DEFAULT_VARIANCE_EPSILON
  const biases = options.biases ?? false
  // Only the tensors no input carried in part go through correctVariance: a partial frame
  // leaves most of the model to the masked path, which reads its carried coordinates only.
  const wholeAt = merged.tensors.flatMap((_, i) => (union[i] === undefined ? [i] : []))
  const onlyWhole = (s: ModelState): ModelState => ({ ...s, tensors: wholeAt.map((i) => s.tensors[i]!) })
  const whole =
    wholeAt.length === 0
      ? undefined
      : correctVariance(onlyWhole(merged), states.map(onlyWhole), weights, options)
  const tensors = merged.tensors.map((t, i) => {
    const m = union[i]
    if (m === undefined) return whole!.tensors[wholeAt.indexOf(i)]!
    const values = t.values.slice()
    if (!biases && t.shape.length <= 1) return { name: t.name, shape: [...t.shape], values }
    const at = maskPositions(m)
    if (at.length <= 1) return { name: t.name, shape: [...t.shape], values }
    const local = meanVariance(states[0]!.tensors[i]!.values, at).variance
    let others = 0
    if (blend < 1) {
      states.forEach((s, j) => {
        const w = weights[j]!
        if (w !== 0) others += w * (j === 0 ? local : meanVariance(s.tensors[i]!.values, at).variance)
      })
    }
    const goal = blend * local + (1 - blend) * others
    const { mean, variance } = meanVariance(t.values, at)
    if (variance + epsilon > 0) {
      rescaleAt(values, t.values, at, mean, Math.sqrt((goal + epsilon) / (variance + epsilon)))
    }
    return { name: t.name, shape: [...t.shape], values }
  })
  return { arch: merged.arch, age: merged.age, tensors }
}

// Module-level loops, not in the closures above (steps/vector.ts says why).

/** Adds `w * v[k]` to `acc[k]` and `w` to `wsum[k]` at every k, or only where `mask[k]` is 1. */
function addWeighted(
  acc: Float64Array,
  wsum: Float64Array,
  w: number,
  v: Float32Array,
  mask: Uint8Array | undefined,
): void {
  if (mask === undefined) {
    for (let k = 0; k < acc.length; k++) {
      acc[k] += w * v[k]!
      wsum[k] += w
    }
  } else {
    for (let k = 0; k < acc.length; k++) {
      if (mask[k] === 0) continue
      acc[k] += w * v[k]!
      wsum[k] += w
    }
  }
}

/** `acc[k] / wsum[k]` where some weight arrived, else `fallback[k]`. */
function weightedMeans(acc: Float64Array, wsum: Float64Array, fallback: Float32Array): Float32Array {
  const values = new Float32Array(acc.length)
  for (let k = 0; k < acc.length; k++) values[k] = wsum[k]! > 0 ? acc[k]! / wsum[k]! : fallback[k]!
  return values
}

/** `values[k] = (from[k] - mean) * scale + mean` at each position k in `at`. */
function rescaleAt(
  values: Float32Array,
  from: Float32Array,
  at: Int32Array,
  mean: number,
  scale: number,
): void {
  for (let j = 0; j < at.length; j++) {
    const k = at[j]!
    values[k] = (from[k]! - mean) * scale + mean
  }
}

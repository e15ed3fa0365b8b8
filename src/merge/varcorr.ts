/**
 * Variance correction (Tian et al., "Vanishing Variance Problem in Fully
 * Decentralized Neural-Network Systems"): averaging models whose weights are not
 * correlated shrinks each tensor's variance (by 1/k for k independent models),
 * which stalls learning; rescaling around the mean restores it.
 */

import type { ModelState } from '../model/types.ts'
import { InvalidArgumentError } from '../util/errors.ts'

/** Where the variance of each merged tensor should land. */
export type VarianceTarget =
  /** Mean of the merge inputs' variances, weighted like the average (Tian et al.'s "follow others"). */
  | 'inputs'
  /** The local model's variance ("follow self"). */
  | 'local'
  /** `local * blend + inputs * (1 - blend)` ("conservative"). */
  | { blend: number }

/** Options of variance correction. */
export interface VarianceCorrectionOptions {
  /** Default 'inputs'. */
  target?: VarianceTarget
  /** Damps the rescaling of near-constant tensors; default 1e-4 as in Tian et al. */
  epsilon?: number
  /** Also correct rank-1 tensors (biases); default false: kernels only. */
  biases?: boolean
}

/** Tian et al.'s epsilon. */
export const DEFAULT_VARIANCE_EPSILON = 1e-4

/** Mean and population variance of a tensor, in float64; with `at`, of its values at those flat indices only. */
export function meanVariance(values: Float32Array, at?: Int32Array): { mean: number; variance: number } {
  const n = at === undefined ? values.length : at.length
  if (n === 0) return { mean: 0, variance: 0 }
  let sum = 0
  for (let j = 0; j < n; j++) sum += values[at === undefined ? j : at[j]!]!
  const mean = sum / n
  let sq = 0
  for (let j = 0; j < n; j++) {
    const d = values[at === undefined ? j : at[j]!]! - mean
    sq += d * d
  }
  return { mean, variance: sq / n }
}

/**
 * Rescales `values` around their mean by `sqrt((target + eps) / (variance + eps))`
 * (Tian et al.'s formula): the mean is kept and the new variance is within `eps` of
 * `target` (exactly `target` when eps = 0). Size-1 tensors are returned unchanged.
 */
export function scaleToVariance(
  values: Float32Array,
  target: number,
  epsilon = DEFAULT_VARIANCE_EPSILON,
): Float32Array {
  if (!(target >= 0) || !Number.isFinite(target)) throw new InvalidArgumentError(`target variance ${target}`)
  if (!(epsilon >= 0)) throw new InvalidArgumentError(`epsilon ${epsilon}`)
  if (values.length <= 1) return values.slice()
  const { mean, variance } = meanVariance(values)
  if (variance + epsilon === 0) return values.slice()
  const scale = Math.sqrt((target + epsilon) / (variance + epsilon))
  const out = new Float32Array(values.length)
  for (let k = 0; k < values.length; k++) out[k] = (values[k]! - mean) * scale + mean
  return out
}

/**
 * Corrects the variance of each tensor of `merged`, the weighted average of
 * `inputs` (local model first) with `weights`. Pure: returns a new state.
 */
export function correctVariance(
  merged: ModelState,
  inputs: readonly ModelState[],
  weights: readonly number[],
  options: VarianceCorrectionOptions = {},
): ModelState {
  if (inputs.length === 0 || inputs.length !== weights.length) {
    throw new InvalidArgumentError(`${inputs.length} inputs for ${weights.length} weights`)
  }
  const target = options.target ?? 'inputs'
  const blend = target === 'inputs' ? 0 : target === 'local' ? 1 : target.blend
  if (!(blend >= 0 && blend <= 1)) throw new InvalidArgumentError(`blend must be in [0, 1], got ${blend}`)
  const epsilon = options.epsilon ?? DEFAULT_VARIANCE_EPSILON
  const biases = options.biases ?? false
  const tensors = merged.tensors.map((t, i) => {
    const skip = t.values.length <= 1 || (!biases && t.shape.length <= 1)
    if (skip) return { name: t.name, shape: [...t.shape], values: t.values.slice() }
    const local = meanVariance(inputs[0]!.tensors[i]!.values).variance
    let others = 0
    if (blend < 1) {
      for (let s = 0; s < inputs.length; s++) {
        const w = weights[s]!
        if (w !== 0) others += w * (s === 0 ? local : meanVariance(inputs[s]!.tensors[i]!.values).variance)
      }
    }
    const goal = blend * local + (1 - blend) * others
    return { name: t.name, shape: [...t.shape], values: scaleToVariance(t.values, goal, epsilon) }
  })
  return { arch: merged.arch, age: merged.age, tensors }
}

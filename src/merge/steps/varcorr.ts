/** Post step `varcorr`: restores the per-tensor variance that averaging shrinks (./varcorr.ts). */

import type { PostStepDefinition } from '../pipeline.ts'
import { correctVariance } from '../varcorr.ts'

/** Rescales each tensor of the combined model around its mean to the weighted variance of the combined states. */
export const varcorrStep: PostStepDefinition = {
  kind: 'post',
  create(init) {
    return (combination) =>
      correctVariance(combination.state, combination.states, combination.weights, init.varcorr)
  },
}

/** Post step `varcorr`: restores the per-tensor variance that averaging shrinks (./varcorr.ts). */

import { correctVarianceMasked } from '../partial.ts'
import type { PostStepDefinition } from '../pipeline.ts'
import { correctVariance } from '../varcorr.ts'

/**
 * Rescales each tensor of the combined model around its mean to the weighted variance of the
 * combined states; with partial inputs, only the coordinates they carried (../partial.ts).
 */
export const varcorrStep: PostStepDefinition = {
  kind: 'post',
  create(init) {
    return (combination) =>
      combination.masks === undefined
        ? correctVariance(combination.state, combination.states, combination.weights, init.varcorr)
        : correctVarianceMasked(
            combination.state,
            combination.states,
            combination.weights,
            combination.masks,
            init.varcorr,
          )
  },
}

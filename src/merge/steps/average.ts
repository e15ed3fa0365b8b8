/** Combine step `average`: the age-weighted mean of the local model and the inputs (./average.ts). */

import { ageWeights, mergedAge, scaleWeights, weightedAverage } from '../average.ts'
import { maskedAverage, partialMergedAge } from '../partial.ts'
import type { CombineStepDefinition } from '../pipeline.ts'

/**
 * Weighs each model by its age (`t_k / sum t`, uniform when every age is 0) times the input's
 * `weight` (the learner's share weighting; 1 when absent); the result takes the largest age.
 * With partial inputs each coordinate averages only the models that carried it and the age
 * counts a partial claim by the share it carried (../partial.ts).
 */
export const averageStep: CombineStepDefinition = {
  kind: 'combine',
  create() {
    return (local, inputs) => {
      const states = [local, ...inputs.map((input) => input.state)]
      const weights = scaleWeights(ageWeights(states), [1, ...inputs.map((input) => input.weight ?? 1)])
      if (inputs.every((input) => input.masks === undefined)) {
        return { state: weightedAverage(states, weights, mergedAge(states)), states, weights }
      }
      const masks = [undefined, ...inputs.map((input) => input.masks)]
      const state = maskedAverage(states, weights, masks, partialMergedAge(states, masks))
      return { state, states, weights, masks }
    }
  },
}

/** Combine step `average`: the age-weighted mean of the local model and the inputs (./average.ts). */

import { ageWeights, mergedAge, weightedAverage } from '../average.ts'
import type { CombineStepDefinition } from '../pipeline.ts'

/** Weighs each model by its age (`t_k / sum t`, uniform when every age is 0); the result takes the largest age. */
export const averageStep: CombineStepDefinition = {
  kind: 'combine',
  create() {
    return (local, inputs) => {
      const states = [local, ...inputs.map((input) => input.state)]
      const weights = ageWeights(states)
      return { state: weightedAverage(states, weights, mergedAge(states)), states, weights }
    }
  },
}

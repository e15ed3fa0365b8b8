/** Merging received models into the local one: weight matching, age-weighted averaging, variance correction. */

export { assertSameLayout, cloneState, sameValues, stateDistance } from '../model/layout.ts'
export { type AlignOptions, type AlignResult, alignTo, maxAssignment, similarity } from './align.ts'
export { ageWeights, averageByAge, mergedAge, weightedAverage } from './average.ts'
export { createMerger, isMergeMode, MERGE_MODES, type MergerInit } from './merger.ts'
export {
  correctVariance,
  DEFAULT_VARIANCE_EPSILON,
  meanVariance,
  scaleToVariance,
  type VarianceCorrectionOptions,
  type VarianceTarget,
} from './varcorr.ts'

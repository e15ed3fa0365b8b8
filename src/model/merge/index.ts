/** Merging received models into the local one: weight matching, age-weighted averaging, variance correction. */

export { type AlignOptions, type AlignResult, alignTo, maxAssignment, similarity } from './align.ts'
export { ageWeights, averageByAge, mergedAge, weightedAverage } from './average.ts'
export { assertSameLayout, cloneState, sameValues, stateDistance } from './layout.ts'
export { createMerger, isMergeMode, MERGE_MODES, type MergerInit } from './merger.ts'
export {
  correctVariance,
  DEFAULT_VARIANCE_EPSILON,
  meanVariance,
  scaleToVariance,
  type VarianceCorrectionOptions,
  type VarianceTarget,
} from './varcorr.ts'

/**
 * Merging received models into the local one, as a pipeline of named steps from a
 * registry: weight matching, age-weighted averaging, variance correction.
 */

export { assertSameLayout, cloneState, sameValues, stateDistance } from '../model/layout.ts'
export { type AlignOptions, type AlignResult, alignTo, maxAssignment, similarity } from './align.ts'
export { ageWeights, averageByAge, mergedAge, weightedAverage } from './average.ts'
export { MERGE_REASONS } from './constants.ts'
export { InvalidMergePipelineError, UnknownMergePipelineError, UnknownMergeStepError } from './errors.ts'
export { createMergePipeline, createMerger, type MergerInit } from './merger.ts'
export {
  type Combination,
  type CombineStep,
  type CombineStepDefinition,
  checkStepOrder,
  composePipeline,
  type InputOutcome,
  type InputStep,
  type InputStepDefinition,
  type InputVerdict,
  type MergeInput,
  type MergePipeline,
  type MergeResult,
  type Merger,
  type MergeStepDefinition,
  type MergeStepInit,
  type MergeStepKind,
  type MergeStepOptions,
  type NamedMergeStep,
  type PostStep,
  type PostStepDefinition,
} from './pipeline.ts'
export {
  DEFAULT_MERGE_MODE,
  isMergeMode,
  MERGE_MODES,
  MERGE_PIPELINES,
  MERGE_REGISTRY,
  MERGE_STEPS,
  type MergeMode,
  type MergePipelineName,
  type MergeRegistry,
  parseMergeMode,
  resolveMergeSteps,
  UNDEFENDED_MERGE_MODE,
} from './registry.ts'
export { type AgeCapOptions, ageCapStep } from './steps/age-cap.ts'
export { type ClipBounds, type ClipOptions, clipStep, DistanceHistory } from './steps/clip.ts'
export { ProbeHistory, type ProbeOptions, probeStep } from './steps/probe.ts'
export { isFiniteState } from './steps/vector.ts'
export {
  correctVariance,
  DEFAULT_VARIANCE_EPSILON,
  meanVariance,
  scaleToVariance,
  type VarianceCorrectionOptions,
  type VarianceTarget,
} from './varcorr.ts'

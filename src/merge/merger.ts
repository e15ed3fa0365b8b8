/** Builds a merger from configuration: a named pipeline or a list of steps, resolved in the registry. */

import type { ModelState } from '../model/types.ts'
import { composePipeline, type MergePipeline, type Merger, type MergeStepOptions } from './pipeline.ts'
import { MERGE_REGISTRY, type MergeMode, type MergeRegistry, resolveMergeSteps } from './registry.ts'

/** Configuration of {@link createMerger} and {@link createMergePipeline}. */
export interface MergerInit extends MergeStepOptions {
  /** A registered pipeline ('plain', 'align', 'varcorr', 'align+varcorr') or steps ('align,average,varcorr'). */
  mode: MergeMode
  /** Seeds alignment's group order; merging is a pure function of (inputs, seed). Default 0. */
  seed?: number
  /** Where `mode` is resolved; default MERGE_REGISTRY. */
  registry?: MergeRegistry
}

/**
 * Builds the pipeline `init.mode` names, its steps created once (so they may keep state
 * across merges). Throws UnknownMergePipelineError, UnknownMergeStepError or
 * InvalidMergePipelineError for a bad mode.
 */
export function createMergePipeline(init: MergerInit): MergePipeline {
  const { mode, seed = 0, registry = MERGE_REGISTRY, ...options } = init
  return composePipeline(resolveMergeSteps(mode, registry), { ...options, seed }, mode)
}

/**
 * Builds a Merger for `init.mode`: e.g. 'align+varcorr' aligns each received model to the
 * local one, averages by age, then corrects the variance. Every received model is checked
 * against the local layout first, and any mismatch throws ArchMismatchError before
 * anything is merged. Pure: inputs are never mutated, the result has fresh arrays.
 * Callers that need each input's outcome use {@link createMergePipeline}.
 */
export function createMerger(init: MergerInit): Merger {
  const pipeline = createMergePipeline(init)
  return (local: ModelState, received: ModelState[]): ModelState => pipeline.merge(local, received).state
}

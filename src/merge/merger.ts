/** The merge pipeline: align each received model, average by age, correct the variance. */

import { assertSameLayout, cloneState } from '../model/layout.ts'
import {
  archSpecOf,
  checkPermutationSpec,
  type PermutationSpec,
  permutationSpecFor,
} from '../model/permutation.ts'
import type { MergeMode, Merger, ModelState } from '../model/types.ts'
import { InvalidArgumentError } from '../util/errors.ts'
import { hashSeed } from '../util/rng.ts'
import { type AlignOptions, alignTo } from './align.ts'
import { ageWeights, mergedAge, weightedAverage } from './average.ts'
import { correctVariance, type VarianceCorrectionOptions } from './varcorr.ts'

/** Configuration of {@link createMerger}. */
export interface MergerInit {
  mode: MergeMode
  /** Seeds alignment's group order; merging is a pure function of (inputs, seed). Default 0. */
  seed?: number
  /** Options of the variance correction (modes with varcorr). */
  varcorr?: VarianceCorrectionOptions
  /** Options of weight matching (modes with align), besides the seed. */
  align?: Omit<AlignOptions, 'seed'>
  /** Permutation spec; by default derived from the local model's tensors (zoo architectures). */
  spec?: PermutationSpec
}

/** Every mode a Merger can be built for. */
export const MERGE_MODES: readonly MergeMode[] = ['plain', 'align', 'varcorr', 'align+varcorr']

/**
 * bench:merge (docs/BENCHMARKS.md): with independent inits varcorr beats plain by ~3 points and
 * align+varcorr by ~0.7, at a third of a training step per merge.
 */
export const DEFAULT_MERGE_MODE: MergeMode = 'varcorr'

/** True when `mode` is a known MergeMode (for parsing configuration). */
export function isMergeMode(mode: string): mode is MergeMode {
  return (MERGE_MODES as readonly string[]).includes(mode)
}

/**
 * Builds a Merger for `mode`: (align each received model to the local one) ->
 * age-weighted average -> (variance correction). Every received model is checked
 * against the local layout first, and any mismatch throws ArchMismatchError before
 * anything is merged. Pure: inputs are never mutated, the result has fresh arrays.
 */
export function createMerger(init: MergerInit): Merger {
  if (!isMergeMode(init.mode)) throw new InvalidArgumentError(`unknown merge mode ${String(init.mode)}`)
  const align = init.mode === 'align' || init.mode === 'align+varcorr'
  const varcorr = init.mode === 'varcorr' || init.mode === 'align+varcorr'
  const seed = init.seed ?? 0
  // One spec per arch fingerprint: deriving it walks the tensors, a merge need not.
  const specs = new Map<string, PermutationSpec>()
  const specFor = (local: ModelState): PermutationSpec => {
    let spec = specs.get(local.arch)
    if (spec === undefined) {
      spec = init.spec ?? permutationSpecFor(archSpecOf(local))
      specs.set(local.arch, spec)
    }
    checkPermutationSpec(local, spec)
    return spec
  }

  return (local: ModelState, received: ModelState[]): ModelState => {
    for (const r of received) assertSameLayout(local, r)
    if (received.length === 0) return cloneState(local)
    let inputs = received
    if (align) {
      const spec = specFor(local)
      inputs = received.map(
        (r, k) => alignTo(local, r, spec, { ...init.align, seed: hashSeed(seed, k) }).state,
      )
    }
    const states = [local, ...inputs]
    const weights = ageWeights(states)
    const averaged = weightedAverage(states, weights, mergedAge(states))
    return varcorr ? correctVariance(averaged, states, weights, init.varcorr) : averaged
  }
}

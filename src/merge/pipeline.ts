/**
 * Merging as a pipeline of named steps: per-input steps (align, then checks that may clip or
 * reject one received model), one combine step (the age-weighted average), then post steps
 * (variance correction). Per-input steps see one received model at a time, in the local
 * model's space: gossip has no batch, so robust rules cannot wait for one.
 */

import { assertSameLayout, cloneState } from '../model/layout.ts'
import type { PermutationSpec } from '../model/permutation.ts'
import type { ModelState } from '../model/types.ts'
import type { AlignOptions } from './align.ts'
import { InvalidMergePipelineError } from './errors.ts'
import { checkMasks, fillUncarried, isPartial, type MaskedState, type TensorMasks } from './masks.ts'
import type { AgeCapOptions } from './steps/age-cap.ts'
import type { ClipOptions } from './steps/clip.ts'
import type { ProbeOptions } from './steps/probe.ts'
import type { VarianceCorrectionOptions } from './varcorr.ts'

/**
 * Combines the local model with received ones into a new local model. Pure: never
 * mutates its inputs. Throws ArchMismatchError when fingerprints differ.
 */
export type Merger = (local: ModelState, received: ModelState[]) => ModelState

/**
 * One received model on its way through the per-input steps. Steps pass it on as
 * `{ ...input, state }`, so fields added later travel with it.
 */
export interface MergeInput {
  /** Position in the merge's `received` array: outcomes and alignment seeds refer to it. */
  readonly index: number
  /**
   * The model; in the local model's space once aligned. A partial input (with `masks`)
   * holds the local value at every coordinate it does not carry (./masks.ts), so a step
   * that ignores masks sees no change there; a step that moves coordinates (align) moves
   * the masks with them and restores that.
   */
  readonly state: ModelState
  /** Partial inputs (top-k, partial units): per tensor, 1 where a value was received. */
  readonly masks?: TensorMasks
  /** Multiplies the input's weight in the combine step (absent: 1); in (0, 1] by the caller's rules. */
  readonly weight?: number
}

/** What a per-input step decided about one input; a clip or a reject says why. */
export type InputVerdict =
  | { action: 'accept'; input: MergeInput }
  | { action: 'clip'; input: MergeInput; reason: string }
  | { action: 'reject'; reason: string }

/** What became of one received model in a merge, for the caller's peer policy. */
export interface InputOutcome {
  /** Position in the merge's `received` array. */
  index: number
  action: 'merged' | 'clipped' | 'rejected'
  /** The step that rejected the input, or the first that clipped it. */
  step?: string
  reason?: string
}

/** A merge's new local model and the outcome of each received model, in `received` order. */
export interface MergeResult {
  state: ModelState
  outcomes: InputOutcome[]
}

/** The combine step's output, as the post steps see it. */
export interface Combination {
  /** The combined model. */
  state: ModelState
  /** What was combined, local model first. */
  states: readonly ModelState[]
  /** Weight of each of `states` in the combination. */
  weights: readonly number[]
  /** The masks of each of `states` (undefined: whole); absent when every input was whole. */
  masks?: readonly (TensorMasks | undefined)[]
}

/** Transforms, clips or rejects one received model. May throw only on a programming or configuration error. */
export type InputStep = (local: ModelState, input: MergeInput) => InputVerdict
/** Combines the local model with the inputs the per-input steps let through (at least one). */
export type CombineStep = (local: ModelState, inputs: readonly MergeInput[]) => Combination
/** Adjusts the combined model (its states and weights stay those of the combine step). */
export type PostStep = (combination: Combination) => ModelState

/** Options of the built-in steps; a step that needs options adds an optional field here. */
export interface MergeStepOptions {
  /** Permutation spec for `align`; by default derived from the local model's tensors (zoo architectures). */
  spec?: PermutationSpec
  /** Options of weight matching (`align`), besides the seed. */
  align?: Omit<AlignOptions, 'seed'>
  /** Options of the variance correction (`varcorr`). */
  varcorr?: VarianceCorrectionOptions
  /** Options of the distance test and clipping (`clip`). */
  clip?: ClipOptions
  /** Options of the age cap (`age-cap`). */
  ageCap?: AgeCapOptions
  /** The local probe (`probe`): without its accuracy function the step accepts every input. */
  probe?: ProbeOptions
}

/** What a step factory receives: one merger's seed and options. */
export interface MergeStepInit extends MergeStepOptions {
  /** Merging is a pure function of (inputs, seed). */
  seed: number
}

/** A registrable per-input step; `create` runs once per merger (see {@link MergeStepDefinition}). */
export interface InputStepDefinition {
  kind: 'input'
  create: (init: MergeStepInit) => InputStep
}

/** A registrable combine step. */
export interface CombineStepDefinition {
  kind: 'combine'
  create: (init: MergeStepInit) => CombineStep
}

/** A registrable post step. */
export interface PostStepDefinition {
  kind: 'post'
  create: (init: MergeStepInit) => PostStep
}

/**
 * A registrable step: its kind and a factory called once per merger, so a step can keep
 * state across that merger's merges (a history of distances, say) in its closure.
 */
export type MergeStepDefinition = InputStepDefinition | CombineStepDefinition | PostStepDefinition

/** Where a step runs: on each input, once to combine, or on the combined model. */
export type MergeStepKind = MergeStepDefinition['kind']

/** A step definition under the name a pipeline calls it by. */
export interface NamedMergeStep {
  name: string
  definition: MergeStepDefinition
}

/** A merger built from steps; `merge` also reports what became of each input. */
export interface MergePipeline {
  /** The mode it was built for (a pipeline name or a step list). */
  readonly mode: string
  /** Step names in the order they run. */
  readonly steps: readonly string[]
  /** `received` may hold partial inputs (MaskedState): only their carried coordinates are merged. */
  merge(local: ModelState, received: readonly MaskedState[]): MergeResult
}

/**
 * Throws InvalidMergePipelineError unless the steps are: per-input steps, exactly one
 * combine step, then post steps.
 */
export function checkStepOrder(steps: readonly { name: string; kind: MergeStepKind }[]): void {
  const list = steps.map((s) => s.name).join(',')
  const combines = steps.filter((s) => s.kind === 'combine')
  if (combines.length !== 1) {
    throw new InvalidMergePipelineError(
      `pipeline ${list} needs exactly one combine step, has ${combines.length}`,
    )
  }
  const at = steps.findIndex((s) => s.kind === 'combine')
  steps.forEach((s, i) => {
    if ((s.kind === 'input' && i > at) || (s.kind === 'post' && i < at)) {
      throw new InvalidMergePipelineError(
        `pipeline ${list}: ${s.kind} step ${s.name} must come ${s.kind === 'input' ? 'before' : 'after'} the combine step`,
      )
    }
  })
}

/**
 * Builds a pipeline from named steps (checked by {@link checkStepOrder}), creating each
 * step once. A merge checks every received model against the local layout first (any
 * mismatch throws ArchMismatchError before anything runs), runs each input through the
 * per-input steps until one rejects it, combines the local model with the survivors and
 * applies the post steps. With no survivor the result is a copy of the local model.
 * Pure: inputs are never mutated, the result has fresh arrays.
 */
export function composePipeline(
  steps: readonly NamedMergeStep[],
  init: MergeStepInit,
  mode = steps.map((s) => s.name).join(','),
): MergePipeline {
  checkStepOrder(steps.map((s) => ({ name: s.name, kind: s.definition.kind })))
  const inputSteps: Array<{ name: string; run: InputStep }> = []
  const postSteps: PostStep[] = []
  let combine: CombineStep | undefined
  for (const { name, definition } of steps) {
    if (definition.kind === 'input') inputSteps.push({ name, run: definition.create(init) })
    else if (definition.kind === 'combine') combine = definition.create(init)
    else postSteps.push(definition.create(init))
  }
  const combineStep = combine!

  return {
    mode,
    steps: steps.map((s) => s.name),
    merge(local: ModelState, received: readonly MaskedState[]): MergeResult {
      for (const r of received) {
        assertSameLayout(local, r)
        if (r.masks !== undefined) checkMasks(r, r.masks)
      }
      const outcomes: InputOutcome[] = []
      const accepted: MergeInput[] = []
      received.forEach((state, index) => {
        // A partial input enters holding the local values where it carries nothing (./masks.ts).
        const weight = state.weight === undefined ? {} : { weight: state.weight }
        let input: MergeInput = isPartial(state.masks)
          ? { index, state: fillUncarried(local, state, state.masks), masks: state.masks, ...weight }
          : { index, state, ...weight }
        let outcome: InputOutcome = { index, action: 'merged' }
        for (const { name, run } of inputSteps) {
          const verdict = run(local, input)
          if (verdict.action === 'reject') {
            outcome = { index, action: 'rejected', step: name, reason: verdict.reason }
            break
          }
          input = verdict.input
          if (verdict.action === 'clip' && outcome.action === 'merged') {
            outcome = { index, action: 'clipped', step: name, reason: verdict.reason }
          }
        }
        outcomes.push(outcome)
        if (outcome.action !== 'rejected') accepted.push(input)
      })
      if (accepted.length === 0) return { state: cloneState(local), outcomes }
      let combination = combineStep(local, accepted)
      for (const post of postSteps) combination = { ...combination, state: post(combination) }
      return { state: combination.state, outcomes }
    },
  }
}

/**
 * The registry of merge steps and named pipelines. A step is one file in ./steps plus one
 * line in MERGE_STEPS; a named pipeline is one line in MERGE_PIPELINES. Any comma-separated
 * list of registered steps (`align,average,varcorr`) is a pipeline too.
 */

import { InvalidMergePipelineError, UnknownMergePipelineError, UnknownMergeStepError } from './errors.ts'
import { checkStepOrder, type MergeStepDefinition, type NamedMergeStep } from './pipeline.ts'
import { ageCapStep } from './steps/age-cap.ts'
import { alignStep } from './steps/align.ts'
import { averageStep } from './steps/average.ts'
import { clipStep } from './steps/clip.ts'
import { probeStep } from './steps/probe.ts'
import { varcorrStep } from './steps/varcorr.ts'

/** Every built-in step by the name pipelines use. */
export const MERGE_STEPS = {
  align: alignStep,
  clip: clipStep,
  probe: probeStep,
  'age-cap': ageCapStep,
  average: averageStep,
  varcorr: varcorrStep,
} as const satisfies Record<string, MergeStepDefinition>

/**
 * Named pipelines: the values `--merge` has always accepted, and the robust ones: `robust` is
 * `varcorr` behind the distance test / clipping and the age cap (issue 9); `align+robust` aligns first.
 */
export const MERGE_PIPELINES = {
  plain: ['average'],
  align: ['align', 'average'],
  varcorr: ['average', 'varcorr'],
  'align+varcorr': ['align', 'average', 'varcorr'],
  robust: ['probe', 'clip', 'age-cap', 'average', 'varcorr'],
  'align+robust': ['align', 'probe', 'clip', 'age-cap', 'average', 'varcorr'],
} as const satisfies Record<string, readonly (keyof typeof MERGE_STEPS)[]>

/** A registered pipeline name. */
export type MergePipelineName = keyof typeof MERGE_PIPELINES

/** How to merge: a registered pipeline name, or a comma-separated list of step names. */
export type MergeMode = MergePipelineName | `${string},${string}`

/** Every registered pipeline name. */
export const MERGE_MODES = Object.keys(MERGE_PIPELINES) as MergePipelineName[]

/**
 * `robust`: `varcorr` (bench:merge, docs/BENCHMARKS.md: with independent inits it beats plain by
 * ~3 points and align+varcorr by ~0.7, at a third of a training step per merge) behind the
 * robust steps (`clip`, `age-cap`), so that one peer cannot take the network's model over (issue
 * 9). No `align`: bench:merge found it buys little here, and `clip`'s warm-up bounds let
 * independently initialised peers merge without it.
 */
export const DEFAULT_MERGE_MODE: MergeMode = 'robust'

/** The pipeline without the robust steps: `--defences off` falls back to it (the measured pre-issue-9 default). */
export const UNDEFENDED_MERGE_MODE: MergeMode = 'varcorr'

/** Steps and named pipelines a mode is resolved in (tests and extensions pass their own). */
export interface MergeRegistry {
  steps: Readonly<Record<string, MergeStepDefinition>>
  pipelines: Readonly<Record<string, readonly string[]>>
}

/** The built-in steps and pipelines. */
export const MERGE_REGISTRY: MergeRegistry = { steps: MERGE_STEPS, pipelines: MERGE_PIPELINES }

/**
 * The steps `mode` names, in order: a pipeline's steps, or those of a comma-separated list
 * (names trimmed). Throws UnknownMergePipelineError, UnknownMergeStepError or
 * InvalidMergePipelineError (steps out of order, see checkStepOrder).
 */
export function resolveMergeSteps(mode: string, registry: MergeRegistry = MERGE_REGISTRY): NamedMergeStep[] {
  let names: readonly string[]
  if (Object.hasOwn(registry.pipelines, mode)) names = registry.pipelines[mode]!
  else if (mode.includes(',')) names = mode.split(',').map((s) => s.trim())
  else {
    throw new UnknownMergePipelineError(
      `unknown merge pipeline '${mode}': use one of ${Object.keys(registry.pipelines).join('|')} ` +
        `or a comma-separated list of the steps ${Object.keys(registry.steps).join(', ')}`,
    )
  }
  const steps = names.map((name): NamedMergeStep => {
    if (name === '') throw new InvalidMergePipelineError(`empty step name in merge pipeline '${mode}'`)
    if (!Object.hasOwn(registry.steps, name)) {
      throw new UnknownMergeStepError(
        `unknown merge step '${name}' in '${mode}': steps are ${Object.keys(registry.steps).join(', ')}`,
      )
    }
    return { name, definition: registry.steps[name]! }
  })
  checkStepOrder(steps.map((s) => ({ name: s.name, kind: s.definition.kind })))
  return steps
}

/** Returns `mode` as a MergeMode when it resolves in the built-in registry; throws the errors of {@link resolveMergeSteps}. */
export function parseMergeMode(mode: string): MergeMode {
  resolveMergeSteps(mode)
  return mode as MergeMode
}

/** True when `mode` resolves to a valid pipeline of built-in steps (for parsing configuration). */
export function isMergeMode(mode: string): mode is MergeMode {
  try {
    resolveMergeSteps(mode)
    return true
  } catch {
    return false
  }
}

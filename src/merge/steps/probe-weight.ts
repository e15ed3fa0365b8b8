/**
 * Per-input step `probe-weight`: a received model counts for as much as it is worth on my data.
 * `probe` refuses what is far below the models we hear from; this weighs what passes by its
 * accuracy on the local probe batch against the local model's own, both measured above chance:
 * `((acc - chance) / (local - chance)) ^ power`, at most 1, at least a floor.
 *
 * Why: a model crafted to sit inside the honest spread (alie, "a little is enough") passes the
 * distance test and the probe's bar, and its sender pushes as often as the fair share allows, so
 * a third to a half of what a peer merged came from such senders (docs/BENCHMARKS.md). On the
 * local probe those models scored lower than the honest ones (0.79 of the local model's accuracy
 * above chance against 0.96, medians after the first 40 s of a seed-4 run), so weighing by it takes
 * mass from them without a rule for the mode. An honest model below ours on our data (a skewed
 * share, a peer behind) only weighs a little less, the local model a little more.
 * Defaults and reasons: ../constants.ts.
 */

import type { ModelState } from '../../model/types.ts'
import { InvalidArgumentError } from '../../util/errors.ts'
import {
  DEFAULT_PROBE_WEIGHT_FLOOR,
  DEFAULT_PROBE_WEIGHT_POWER,
  DEFAULT_PROBE_WEIGHT_REPORT,
  MERGE_REASONS,
} from '../constants.ts'
import type { InputStepDefinition, InputVerdict, MergeInput } from '../pipeline.ts'

/** Options of `probe-weight` (defaults and reasons in ../constants.ts); the accuracy comes from `probe`'s options. */
export interface ProbeWeightOptions {
  /** The factor is the accuracy ratio above chance to this power. */
  power?: number
  /** Lowest factor: an input that passed every refusal keeps some weight. */
  floor?: number
  /** A factor below this is reported as a down-weighting (the peer policy hears of it). */
  report?: number
}

/** What a useless model scores on the probe: its balanced accuracy is 1 / classes. */
export function chanceAccuracy(classes: number): number {
  if (!(Number.isInteger(classes) && classes >= 1)) throw new InvalidArgumentError(`classes ${classes}`)
  return 1 / classes
}

/** An input's weight factor from its probe accuracy and the local model's (chance: what a useless model scores). */
export function probeWeightFactor(
  accuracy: number,
  localAccuracy: number,
  chance: number,
  options: Required<ProbeWeightOptions>,
): number {
  // Nothing learnt yet: the probe cannot tell a good input from a bad one.
  if (!(localAccuracy > chance)) return 1
  const ratio = (accuracy - chance) / (localAccuracy - chance)
  if (!(ratio > 0)) return options.floor
  return Math.max(options.floor, Math.min(1, ratio ** options.power))
}

function settings(options: ProbeWeightOptions = {}): Required<ProbeWeightOptions> {
  const s = {
    power: options.power ?? DEFAULT_PROBE_WEIGHT_POWER,
    floor: options.floor ?? DEFAULT_PROBE_WEIGHT_FLOOR,
    report: options.report ?? DEFAULT_PROBE_WEIGHT_REPORT,
  }
  if (!(s.power >= 0 && Number.isFinite(s.power)))
    throw new InvalidArgumentError(`probe-weight power ${s.power}`)
  if (!(s.floor > 0 && s.floor <= 1)) throw new InvalidArgumentError(`probe-weight floor ${s.floor}`)
  if (!(s.report >= 0 && s.report <= 1)) throw new InvalidArgumentError(`probe-weight report ${s.report}`)
  return s
}

/**
 * Multiplies each input's weight by {@link probeWeightFactor} (see the module comment); without
 * a probe accuracy function, or with `power` 0, every input passes unchanged.
 */
export const probeWeightStep: InputStepDefinition = {
  kind: 'input',
  create(init) {
    const accuracy = init.probe?.accuracy
    const s = settings(init.probeWeight)
    if (accuracy === undefined || s.power === 0) return (_local, input) => ({ action: 'accept', input })
    const chance = init.probe?.chance ?? 0
    // One merge probes its local model once, however many inputs it has.
    let last: { state: ModelState; accuracy: number } | undefined
    return (local, input): InputVerdict => {
      if (last?.state !== local) last = { state: local, accuracy: accuracy(local) }
      const factor = probeWeightFactor(accuracy(input.state), last.accuracy, chance, s)
      if (factor >= 1) return { action: 'accept', input }
      const weighted: MergeInput = { ...input, weight: (input.weight ?? 1) * factor }
      if (factor < s.report) return { action: 'clip', reason: MERGE_REASONS.probeWeighted, input: weighted }
      return { action: 'accept', input: weighted }
    }
  },
}

/**
 * Per-input step `age-cap`: an age is a claim, not a fact. The received model's age is capped
 * at a multiple of the local age, which bounds the weight the age-weighted average gives it and
 * keeps the merged age (the largest input age) from growing on claims.
 */

import { InvalidArgumentError } from '../../util/errors.ts'
import { AGE_CAP_REPORT_FACTOR, DEFAULT_AGE_WEIGHT_RATIO, MERGE_REASONS } from '../constants.ts'
import type { InputStepDefinition } from '../pipeline.ts'

/** Options of `age-cap` (defaults in ../constants.ts). */
export interface AgeCapOptions {
  /** A received age is capped at `ratio * local age`: its weight is at most `ratio` times the local one. */
  ratio?: number
  /** A cap is reported as a clip only when the claim exceeds the cap by more than this factor. */
  reportFactor?: number
}

/**
 * Caps each received age at `ratio` times the local age (ratio 1: no input outweighs the local
 * model, and merging never raises the local age). Rejects an age that is not finite and >= 0;
 * reports a clip when the claim was more than `reportFactor` times the cap.
 */
export const ageCapStep: InputStepDefinition = {
  kind: 'input',
  create(init) {
    const ratio = init.ageCap?.ratio ?? DEFAULT_AGE_WEIGHT_RATIO
    const reportFactor = init.ageCap?.reportFactor ?? AGE_CAP_REPORT_FACTOR
    if (!(ratio > 0 && Number.isFinite(ratio))) throw new InvalidArgumentError(`age-cap ratio ${ratio}`)
    if (!(reportFactor >= 1)) throw new InvalidArgumentError(`age-cap reportFactor ${reportFactor}`)
    return (local, input) => {
      const age = input.state.age
      if (!(Number.isFinite(age) && age >= 0)) return { action: 'reject', reason: MERGE_REASONS.invalidAge }
      const cap = ratio * local.age
      if (age <= cap) return { action: 'accept', input }
      const capped = { ...input, state: { ...input.state, age: cap } }
      if (age > reportFactor * cap) return { action: 'clip', reason: MERGE_REASONS.ageCapped, input: capped }
      return { action: 'accept', input: capped }
    }
  },
}

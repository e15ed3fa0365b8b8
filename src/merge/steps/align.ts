/**
 * Per-input step `align`: weight matching of one received model to the local one (./align.ts);
 * a partial input's carried units are matched one by one (../match-units.ts).
 */

import {
  archSpecOf,
  checkPermutationSpec,
  type PermutationSpec,
  permutationSpecFor,
} from '../../model/permutation.ts'
import type { ModelState } from '../../model/types.ts'
import { hashSeed } from '../../util/rng.ts'
import { alignTo } from '../align.ts'
import { matchUnits } from '../match-units.ts'
import type { InputStepDefinition } from '../pipeline.ts'

/**
 * Permutes a received model's hidden units to line up with the local model's; seeded by
 * the merger's seed and the input's index. A partial input's whole units are each matched to
 * a distinct local unit and moved there with their masks. Never rejects.
 */
export const alignStep: InputStepDefinition = {
  kind: 'input',
  create(init) {
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
    return (local, input) => {
      if (input.masks !== undefined) {
        const matched = matchUnits(local, input.state, input.masks, specFor(local))
        return { action: 'accept', input: { ...input, state: matched.state, masks: matched.masks } }
      }
      const aligned = alignTo(local, input.state, specFor(local), {
        ...init.align,
        seed: hashSeed(init.seed, input.index),
      })
      return { action: 'accept', input: { ...input, state: aligned.state } }
    }
  },
}

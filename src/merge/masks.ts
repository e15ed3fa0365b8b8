/**
 * Partial inputs: a received model that carries only some coordinates (a top-k or
 * partial-units frame) has a mask per tensor, 1 where a value was received. A merge
 * touches only those coordinates; the others keep the local values.
 *
 * The pipeline's invariant (./pipeline.ts): inside a merge, a partial input holds the
 * local model's value at every coordinate it does not carry. A step that ignores masks
 * therefore sees "no change" there: its distance to the local model, its clipped update
 * and its average are those of the carried coordinates alone.
 */

import { axisView, groupSizes, type PermutationSpec } from '../model/permutation.ts'
import type { ModelState, NamedTensor } from '../model/types.ts'
import { InvalidArgumentError } from '../util/errors.ts'

/** Per tensor, 1 where the value was received; undefined: the whole tensor. */
export type TensorMasks = readonly (Uint8Array | undefined)[]

/** A model state that may carry only some coordinates (`masks` absent: all of them). */
export interface MaskedState extends ModelState {
  masks?: TensorMasks
  /** Multiplies this input's weight in the combine step (default 1): the learner's share weighting. */
  weight?: number
}

/** Throws InvalidArgumentError unless `masks` has one entry per tensor of the right length (0/1 bytes). */
export function checkMasks(state: ModelState, masks: TensorMasks): void {
  if (masks.length !== state.tensors.length) {
    throw new InvalidArgumentError(`${masks.length} masks for ${state.tensors.length} tensors`)
  }
  masks.forEach((m, i) => {
    if (m !== undefined && m.length !== state.tensors[i]!.values.length) {
      throw new InvalidArgumentError(`mask of ${state.tensors[i]!.name} has ${m.length} entries`)
    }
  })
}

/** True when `masks` leaves some coordinate out. */
export function isPartial(masks: TensorMasks | undefined): masks is TensorMasks {
  return masks?.some((m) => m?.includes(0)) === true
}

/** `state` with the local value at every coordinate its masks leave out (fresh arrays where changed). */
export function fillUncarried(local: ModelState, state: ModelState, masks: TensorMasks): ModelState {
  const tensors = state.tensors.map((t, i): NamedTensor => {
    const m = masks[i]
    if (m === undefined) return t
    const values = t.values.slice()
    keepWhereUncarried(values, local.tensors[i]!.values, m)
    return { name: t.name, shape: [...t.shape], values }
  })
  return { arch: state.arch, age: state.age, tensors }
}

/** Share of the model's coordinates the masks carry, in [0, 1]. */
export function carriedFraction(state: ModelState, masks: TensorMasks | undefined): number {
  if (masks === undefined) return 1
  let total = 0
  let carried = 0
  state.tensors.forEach((t, i) => {
    total += t.values.length
    const m = masks[i]
    carried += m === undefined ? t.values.length : countOnes(m)
  })
  return total === 0 ? 1 : carried / total
}

// Module-level loops, not in the closures above (steps/vector.ts says why).

/** `values[k] = local[k]` wherever `mask[k]` is 0. */
function keepWhereUncarried(values: Float32Array, local: Float32Array, mask: Uint8Array): void {
  for (let k = 0; k < values.length; k++) if (mask[k] === 0) values[k] = local[k]!
}

/** Sum of a 0/1 mask. */
function countOnes(mask: Uint8Array): number {
  let n = 0
  for (let k = 0; k < mask.length; k++) n += mask[k]!
  return n
}

/**
 * Per tensor, the union of several inputs' masks: undefined when one of them carries the whole
 * tensor, else 1 where any of them carried a value.
 */
export function unionMasks(list: readonly (TensorMasks | undefined)[], tensors: number): TensorMasks {
  const out: (Uint8Array | undefined)[] = []
  for (let i = 0; i < tensors; i++) {
    let union: Uint8Array | undefined
    let whole = false
    for (const masks of list) {
      const m = masks?.[i]
      if (m === undefined) {
        whole = true
        break
      }
      if (union === undefined) union = m.slice()
      else for (let k = 0; k < m.length; k++) union[k]! |= m[k]!
    }
    out.push(whole ? undefined : union)
  }
  return out
}

/**
 * The units of `group` a partial input carries: a unit is present when, along every axis the
 * group acts on, it was received at every position where any unit of the group was (the rows
 * a frame leaves out for every unit alike, quiet inputs, do not count against it), and at some
 * position at all. A top-k input rarely carries a unit so; a partial-units input carries exactly
 * the units it sent.
 */
export function presentUnits(
  state: ModelState,
  masks: TensorMasks,
  spec: PermutationSpec,
  group: string,
): Uint8Array {
  const size = groupSizes(spec).get(group)
  if (size === undefined) throw new InvalidArgumentError(`unknown group ${group}`)
  const present = new Uint8Array(size).fill(1)
  const some = new Uint8Array(size)
  for (const ax of spec.axes) {
    if (ax.group !== group) continue
    const i = state.tensors.findIndex((t) => t.name === ax.tensor)
    const m = masks[i]
    if (m === undefined) {
      some.fill(1)
      continue
    }
    const { outer, len, inner } = axisView(state.tensors[i]!.shape, ax.axis)
    const stride = ax.stride ?? 1
    // Per (outer, inner) position: did any unit arrive there?
    const any = new Uint8Array(outer * inner)
    for (let o = 0; o < outer; o++) {
      for (let l = 0; l < len; l++) {
        const base = (o * len + l) * inner
        for (let k = 0; k < inner; k++) any[o * inner + k]! |= m[base + k]!
      }
    }
    for (let o = 0; o < outer; o++) {
      for (let l = 0; l < len; l++) {
        const u = Math.floor(l / stride) % size
        if (present[u] === 0) continue
        const base = (o * len + l) * inner
        for (let k = 0; k < inner; k++) {
          const got = m[base + k]!
          some[u]! |= got
          if (got < any[o * inner + k]!) {
            present[u] = 0
            break
          }
        }
      }
    }
  }
  for (let u = 0; u < size; u++) present[u]! &= some[u]!
  return present
}

/** Flat indices whose mask byte is set, increasing. */
export function maskPositions(mask: Uint8Array): Int32Array {
  let n = 0
  for (let k = 0; k < mask.length; k++) n += mask[k]!
  const out = new Int32Array(n)
  let j = 0
  for (let k = 0; k < mask.length; k++) if (mask[k] === 1) out[j++] = k
  return out
}

/**
 * Alignment of a partial input (./masks.ts): each unit it carries whole is matched to a
 * distinct local unit by its weights (the largest summed inner product over the matched
 * pairs: a rectangular linear assignment, munkres), and moved there with its mask; the
 * input's other units fill the remaining slots in their order. Groups are matched one
 * after the other in the spec's order, each seeing the earlier groups' moves, on the
 * weights received (a frame may leave the same rows out of every unit: quiet inputs). Units
 * the input does not carry (all of them for a top-k input) are not matched: there is nothing
 * of them to compare. Afterwards the uncarried coordinates hold the local values
 * again (the pipeline's invariant).
 */

import { munkres } from 'munkres'
import {
  applyPermutation,
  axisView,
  groupSizes,
  identityPermutations,
  type PermutationSpec,
  type Permutations,
} from '../model/permutation.ts'
import type { ModelState } from '../model/types.ts'
import { fillUncarried, presentUnits, type TensorMasks } from './masks.ts'

/** What {@link matchUnits} did. */
export interface MatchResult {
  /** The input with its carried units moved to their matches (uncarried coordinates: local values). */
  state: ModelState
  masks: TensorMasks
  /** Per group, `perm[j] = i`: slot j of the result holds unit i of the input. */
  perms: Permutations
  /** Units matched, over all groups. */
  matched: number
}

/** Matches the units a partial input carries to the local model's (module comment). Pure. */
export function matchUnits(
  local: ModelState,
  input: ModelState,
  masks: TensorMasks,
  spec: PermutationSpec,
): MatchResult {
  const sizes = groupSizes(spec)
  const perms = identityPermutations(spec)
  let state = input
  let maskState = masksAsState(input, masks)
  let matched = 0
  for (const g of spec.groups) {
    const present = presentUnits(state, statesAsMasks(maskState), spec, g.name)
    const carried: number[] = []
    for (let u = 0; u < g.size; u++) if (present[u] === 1) carried.push(u)
    if (carried.length === 0) continue
    const ours = unitRows(local, spec, g.name, sizes)
    const theirs = unitRows(state, spec, g.name, sizes)
    // Only the weights received count: where a unit was left out (quiet inputs) it holds ours.
    const got = unitRows(maskState, spec, g.name, sizes)
    const width = ours.length / g.size
    // munkres minimises: cost = -similarity, rows the carried units, columns every local unit.
    const cost = carried.map((u) => costRow(got, theirs, ours, u, width, g.size))
    const perm = new Int32Array(g.size).fill(-1)
    for (const [r, j] of munkres(cost)) perm[j] = carried[r]!
    // The other units fill the free slots in order.
    const used = new Uint8Array(g.size)
    for (const u of carried) used[u] = 1
    let next = 0
    for (let j = 0; j < g.size; j++) {
      if (perm[j] !== -1) continue
      while (used[next] === 1) next++
      perm[j] = next++
    }
    matched += carried.length
    const step = { ...identityPermutations(spec), [g.name]: perm }
    state = applyPermutation(state, spec, step)
    maskState = applyPermutation(maskState, spec, step)
    // Compose: slot j now holds what slot perm[j] held, which was input unit perms[g][perm[j]].
    const before = perms[g.name]!
    perms[g.name] = Int32Array.from(perm, (p) => before[p]!)
  }
  const outMasks = statesAsMasks(maskState)
  return { state: fillUncarried(local, state, outMasks), masks: outMasks, perms, matched }
}

/** The masks as a state (1.0 / 0.0; a whole tensor all ones), so applyPermutation can move them. */
function masksAsState(state: ModelState, masks: TensorMasks): ModelState {
  return {
    arch: state.arch,
    age: state.age,
    tensors: state.tensors.map((t, i) => {
      const m = masks[i]
      return {
        name: t.name,
        shape: [...t.shape],
        values: m === undefined ? new Float32Array(t.values.length).fill(1) : Float32Array.from(m),
      }
    }),
  }
}

function statesAsMasks(state: ModelState): TensorMasks {
  return state.tensors.map((t) => (allOnes(t.values) ? undefined : Uint8Array.from(t.values)))
}

/** Every weight of each unit of `group`, across the axes it acts on: a [size, features] matrix. */
function unitRows(
  state: ModelState,
  spec: PermutationSpec,
  group: string,
  sizes: Map<string, number>,
): Float64Array {
  const size = sizes.get(group)!
  const axes = spec.axes.filter((ax) => ax.group === group)
  const tensors = axes.map((ax) => state.tensors.find((t) => t.name === ax.tensor)!)
  const width = tensors.reduce((n, t) => n + t.values.length / size, 0)
  const rows = new Float64Array(size * width)
  const filled = new Int32Array(size)
  axes.forEach((ax, a) => {
    const t = tensors[a]!
    copyUnitRows(rows, filled, t.values, axisView(t.shape, ax.axis), ax.stride ?? 1, size, width)
  })
  return rows
}

// Module-level loops, not in the closures above (steps/vector.ts says why).

/** Minus the masked similarity of received unit `u` to each local unit: one row of the cost matrix. */
function costRow(
  got: Float64Array,
  theirs: Float64Array,
  ours: Float64Array,
  u: number,
  width: number,
  size: number,
): Float64Array {
  const row = new Float64Array(size)
  for (let j = 0; j < size; j++) {
    let dot = 0
    for (let f = 0; f < width; f++) dot += got[u * width + f]! * theirs[u * width + f]! * ours[j * width + f]!
    row[j] = -dot
  }
  return row
}

function allOnes(values: Float32Array): boolean {
  for (let k = 0; k < values.length; k++) if (values[k] !== 1) return false
  return true
}

/** Appends each unit's weights along one axis of `values` to its row of `rows` (`filled`: how much each row holds). */
function copyUnitRows(
  rows: Float64Array,
  filled: Int32Array,
  values: Float32Array,
  view: { outer: number; len: number; inner: number },
  stride: number,
  size: number,
  width: number,
): void {
  const { outer, len, inner } = view
  for (let o = 0; o < outer; o++) {
    for (let l = 0; l < len; l++) {
      const u = Math.floor(l / stride) % size
      const base = (o * len + l) * inner
      for (let k = 0; k < inner; k++) rows[u * width + filled[u]! + k] = values[base + k]!
      filled[u]! += inner
    }
  }
}

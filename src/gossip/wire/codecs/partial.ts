/**
 * partial:<fraction>: whole hidden units. For each permutation group of the
 * architecture (the hidden units of an MLP layer, the channels of a conv), the
 * round(fraction * size) units (at least one) whose weights moved most since
 * they were last sent (summed squared change over every coordinate of the unit:
 * its incoming row, its bias, its outgoing column) travel together. Tensors no
 * group touches (the output bias) travel whole. Each tensor's header lists, per
 * axis a group acts on, the units carried (a Slice); the values are the carried
 * coordinates in row-major order, one block per tensor (the sub-tensor when one
 * axis is sliced). The receiver knows which of its units each value belongs to
 * without any index list, and may match received units to its own by their
 * weights (the `align` merge step on a partial input). Reference and error
 * feedback: ./selection.ts.
 *
 * Quiet inputs (CodecOptions.quietInputs, data/quiet.ts): features this node's data (almost) never
 * activates. Their rows of the first dense kernel hold nothing the node learned, so a frame leaves
 * them out of every carried unit (the header's `within` lists the rows kept) and units are picked
 * on the rows that go. Such frames travel over QUIET_PROTOCOL only (../../exchange.ts).
 */
import { archSpecOf, type PermutationSpec, permutationSpecFor } from '../../../model/permutation.ts'
import type { NamedTensor } from '../../../model/types.ts'
import {
  DuplicateIndexError,
  MalformedFrameError,
  SparseCountError,
  UnknownUnitError,
  UnsortedIndexError,
} from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import type { ModelHeader } from '../model.ts'
import type { AxisMask, SelectedTensor, SelectionCodec, Selector, UnitSlice } from './selection.ts'
import { blockShapeOf, keepBits, keptCount, scatter, sliceCount, slicedPositions } from './selection.ts'
import { largest, parseFraction, selectedCount } from './topk.ts'

/** The partial selection (header selection id 2). */
export const PARTIAL: SelectionCodec = {
  name: 'partial',
  id: 2,
  carried(layout, info) {
    if (info.count != null) throw new SparseCountError(`partial tensor '${layout.name}' declares a count`)
    const seen = new Set<number>()
    const slices: UnitSlice[] = info.slices.map((s) => {
      if (s.axis >= layout.shape.length || seen.has(s.axis)) {
        throw new MalformedFrameError(
          `partial tensor '${layout.name}' slices axis ${s.axis} twice or out of range`,
        )
      }
      seen.add(s.axis)
      // proto3 leaves 0 unset: 0 and 1 both mean one block, one element per unit.
      const repeat = s.repeat || 1
      const stride = s.stride || 1
      const len = layout.shape[s.axis]!
      if (len % (repeat * stride) !== 0) {
        throw new MalformedFrameError(
          `axis ${s.axis} of '${layout.name}' is not ${repeat} x units x ${stride}`,
        )
      }
      const units = len / (repeat * stride)
      for (let j = 0; j < s.index.length; j++) {
        const u = s.index[j]!
        if (u >= units) {
          throw new UnknownUnitError(`unit ${u} of '${layout.name}' axis ${s.axis}, which has ${units}`)
        }
        if (j > 0 && u === s.index[j - 1]) throw new DuplicateIndexError(`unit ${u} listed twice`)
        if (j > 0 && u < s.index[j - 1]!) throw new UnsortedIndexError(`unit ${u} after ${s.index[j - 1]}`)
      }
      return { axis: s.axis, repeat, stride, index: s.index }
    })
    const within = info.within == null ? undefined : checkedWithin(layout, slices, info.within)
    const count = sliceCount(layout.shape, slices, within)
    return {
      count,
      slices,
      ...(within === undefined ? {} : { within }),
      blockShape: blockShapeOf(layout.shape, slices, count, within),
      indexBytes: 0,
    }
  },
  createSelector: (arg, options) => new PartialSelector(parseFraction('partial', arg), options?.quietInputs),
}

/** A header's `within`, validated against the tensor and its slices (MalformedFrameError). */
function checkedWithin(
  layout: TensorLayout,
  slices: readonly UnitSlice[],
  within: ModelHeader.AxisMask,
): AxisMask {
  const name = layout.name
  if (slices.length !== 1) {
    throw new MalformedFrameError(`partial tensor '${name}' keeps an axis without exactly one slice`)
  }
  const { axis, bits } = within
  if (axis >= layout.shape.length || axis === slices[0]!.axis) {
    throw new MalformedFrameError(
      `partial tensor '${name}' keeps axis ${axis}, out of range or its sliced one`,
    )
  }
  const len = layout.shape[axis]!
  if (bits.length !== Math.ceil(len / 8)) {
    throw new MalformedFrameError(
      `partial tensor '${name}' keeps ${bits.length} bytes of bits for ${len} indices`,
    )
  }
  if (len % 8 !== 0 && bits[bits.length - 1]! >> (len % 8) !== 0) {
    throw new MalformedFrameError(`partial tensor '${name}' keeps indices past the end of axis ${axis}`)
  }
  if (keptCount(bits, len) === 0) throw new MalformedFrameError(`partial tensor '${name}' keeps no index`)
  return { axis, bits }
}

/** Sender state of partial: the permutation spec of the layout and the reference values. */
class PartialSelector implements Selector {
  readonly spec: string
  private readonly fraction: number
  private readonly quiet: Uint8Array | undefined
  private reference: Float32Array[] = []
  private permSpec?: PermutationSpec
  private layoutKey = ''

  constructor(fraction: number, quiet?: Uint8Array) {
    this.fraction = fraction
    this.spec = `partial:${fraction}`
    // Nothing to leave out, or everything: frames as without it.
    this.quiet = quiet?.includes(1) === true && quiet.includes(0) ? quiet : undefined
  }

  /**
   * The quiet inputs apply to the first tensor when it is a rank-2 kernel of one input row per
   * input feature whose units are along axis 1 (an MLP's first dense layer); else undefined.
   */
  private quietRows(
    tensors: readonly NamedTensor[],
    i: number,
    spec: PermutationSpec,
  ): Uint8Array | undefined {
    const t = tensors[i]!
    if (i !== 0 || this.quiet === undefined || t.shape.length !== 2 || t.shape[0] !== this.quiet.length) {
      return undefined
    }
    const axes = spec.axes.filter((ax) => ax.tensor === t.name)
    return axes.length === 1 && axes[0]!.axis === 1 ? this.quiet : undefined
  }

  select(tensors: readonly NamedTensor[]): SelectedTensor[] {
    const spec = this.fit(tensors)
    const index = new Map(tensors.map((t, i) => [t.name, i]))
    const chosen = new Map<string, number[]>()
    for (const g of spec.groups) {
      const scores = new Float64Array(g.size)
      for (const ax of spec.axes) {
        if (ax.group !== g.name) continue
        const i = index.get(ax.tensor)!
        const skip = this.quietRows(tensors, i, spec)
        addUnitChange(scores, tensors[i]!, this.reference[i]!, ax.axis, ax.repeat ?? 1, ax.stride ?? 1, skip)
      }
      chosen.set(g.name, Array.from(largest(scores, selectedCount(this.fraction, g.size))))
    }
    return tensors.map((t, i) => {
      const slices: UnitSlice[] = spec.axes
        .filter((ax) => ax.tensor === t.name)
        .map((ax) => ({
          axis: ax.axis,
          repeat: ax.repeat ?? 1,
          stride: ax.stride ?? 1,
          index: chosen.get(ax.group)!,
        }))
      if (slices.length === 0) return { info: { slices }, positions: undefined, blockShape: [...t.shape] }
      const quiet = this.quietRows(tensors, i, spec)
      const within = quiet === undefined ? undefined : { axis: 0, bits: keepBits(quiet) }
      const positions = slicedPositions(t.shape, slices, within)
      return {
        info: { slices, ...(within === undefined ? {} : { within }) },
        positions,
        blockShape: blockShapeOf(t.shape, slices, positions.length, within),
      }
    })
  }

  commit(selected: readonly SelectedTensor[], decoded: readonly Float32Array[]): void {
    selected.forEach((s, i) => {
      const ref = this.reference[i]!
      const got = decoded[i]!
      if (s.positions === undefined) ref.set(got)
      else scatter(ref, s.positions, got)
    })
  }

  /** The permutation spec of this layout (ArchMismatchError for a non-zoo one); a new layout resets the reference. */
  private fit(tensors: readonly NamedTensor[]): PermutationSpec {
    const key = tensors.map((t) => `${t.name}:${t.shape.join('x')}`).join(',')
    if (key !== this.layoutKey || this.permSpec === undefined) {
      this.permSpec = permutationSpecFor(archSpecOf({ arch: '', age: 0, tensors: [...tensors] }))
      this.reference = tensors.map((t) => new Float32Array(t.values.length))
      this.layoutKey = key
    }
    return this.permSpec
  }
}

/** Adds, per unit, the squared change of the unit's coordinates along one axis of one tensor. */
function addUnitChange(
  scores: Float64Array,
  t: NamedTensor,
  ref: Float32Array,
  axis: number,
  repeat: number,
  stride: number,
  skipOuter?: Uint8Array,
): void {
  let outer = 1
  for (let i = 0; i < axis; i++) outer *= t.shape[i]!
  let inner = 1
  for (let i = axis + 1; i < t.shape.length; i++) inner *= t.shape[i]!
  const len = t.shape[axis]!
  const units = len / (repeat * stride)
  const v = t.values
  for (let o = 0; o < outer; o++) {
    // Rows a frame leaves out (quiet inputs) must not decide which units go.
    if (skipOuter?.[o] === 1) continue
    for (let l = 0; l < len; l++) {
      const u = Math.floor(l / stride) % units
      const base = (o * len + l) * inner
      let sum = 0
      for (let k = base; k < base + inner; k++) {
        const d = v[k]! - ref[k]!
        sum += d * d
      }
      // A NaN unit goes out first (receivers refuse it) rather than breaking the ordering.
      scores[u] += Number.isNaN(sum) ? Number.POSITIVE_INFINITY : sum
    }
  }
}

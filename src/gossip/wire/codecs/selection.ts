/**
 * Selection codecs: which coordinates of each tensor a frame carries (topk:
 * single coordinates; partial: whole hidden units). The values of the carried
 * coordinates travel in a value codec (raw-f32, f16, int8) as one block per
 * tensor, so `partial:0.1+int8` is the partial selection with int8 values.
 *
 * Payload of a sparse frame: first the index section (topk only: each tensor's
 * carried coordinates as flat indices, strictly increasing, little-endian, in
 * the fewest bytes that hold the tensor's largest index), then the value
 * codec's payload over the blocks. Everything the payload's size depends on is
 * in the header (topk's per-tensor counts, partial's unit lists), so it is
 * known and bounded before anything is allocated.
 *
 * Frames carry absolute values: a receiver with a different model (another
 * initialisation) has no base a delta could apply to, so it merges the carried
 * coordinates and keeps its own values for the others. Differences travel only
 * in delta frames (../delta.ts), against a reference both ends of a pair hold.
 *
 * Senders keep one reference for all destinations: the value each coordinate
 * had when it was last sent to anyone (as receivers decode it), zero before the
 * first push. A selector picks the coordinates (or units) that moved most since
 * then, and what it does not send keeps moving away from the reference until it
 * is picked: error feedback, in absolute values. Gossip forwards what one peer
 * got to others, so a per-destination reference (one model copy per peer, and
 * a peer is picked again only after many rounds) would cost memory without
 * covering anything the global one does not: every coordinate that changes
 * leaves this node eventually. A push that fails still counts as sent. (Delta
 * frames do keep one reference per destination, and pay for it with sticky
 * partners: there a fresh selector picks what differs most from that reference.)
 */
import { maskPositions } from '../../../merge/masks.ts'
import type { NamedTensor } from '../../../model/types.ts'
import type { TensorLayout } from '../codec.ts'
import type { ModelHeader } from '../model.ts'
import type { CodecOptions } from './index.ts'
import { valueCount } from './util.ts'

/** Units of one permutation group along one axis (a partial frame's Slice, validated). */
export interface UnitSlice {
  axis: number
  /** Blocks of the group's units along the axis (>= 1). */
  repeat: number
  /** Contiguous elements per unit within a block (>= 1). */
  stride: number
  /** The units carried, strictly increasing. */
  index: number[]
}

/**
 * Of the coordinates a partial tensor's one slice selects, only those whose index along `axis`
 * (another axis) has its bit set: index j in bit j % 8 of byte j / 8 (a frame's `within`).
 */
export interface AxisMask {
  axis: number
  bits: Uint8Array<ArrayBuffer>
}

/** What the header says one tensor carries (the TensorInfo fields a selection uses). */
export interface CarriedInfo {
  /** topk: coordinates carried. */
  count?: number
  /** partial: units carried along axes; none: the whole tensor. */
  slices?: UnitSlice[]
  /** partial with one slice: the indices of another axis kept (./partial.ts, quiet inputs). */
  within?: AxisMask
}

/** One tensor's carried coordinates, validated against its shape. */
export interface CarriedTensor extends CarriedInfo {
  /** Values the payload carries for this tensor. */
  count: number
  /** Shape of the block of carried values as the value codec sees it. */
  blockShape: number[]
  /** Bytes of this tensor's coordinate indices in the payload's index section. */
  indexBytes: number
}

/** The coordinates a selector picked for one tensor. */
export interface SelectedTensor {
  info: CarriedInfo
  /** Flat indices of the carried values, strictly increasing; undefined: all of them. */
  positions: Int32Array | undefined
  blockShape: number[]
}

/** The sender's side of a selection codec: keeps the reference between pushes. */
export interface Selector {
  /** The spec part it was built from, e.g. `topk:0.1`. */
  readonly spec: string
  /** What to send of these tensors (does not change the reference). */
  select(tensors: readonly NamedTensor[]): SelectedTensor[]
  /** Records what was sent: `decoded[i]` are tensor i's carried values as receivers decode them. */
  commit(selected: readonly SelectedTensor[], decoded: readonly Float32Array[]): void
}

/** A selection codec; see the module comment. */
export interface SelectionCodec {
  /** Name in a codec spec (`topk:0.1`). */
  readonly name: string
  /** Value of the header's `selection` field: unique, never 0 (0 is dense). */
  readonly id: number
  /**
   * Validates what the header says one tensor carries (typed errors: SparseCountError,
   * UnknownUnitError, UnsortedIndexError, DuplicateIndexError, MalformedFrameError).
   * Allocates nothing in proportion to the tensor.
   */
  carried(layout: TensorLayout, info: ModelHeader.TensorInfo): CarriedTensor
  /** The sender's side for `name:arg`; throws InvalidCodecSpecError on a bad argument. */
  createSelector(arg: string | undefined, options?: CodecOptions): Selector
}

/** Bytes of one flat index of a tensor of `size` values: the fewest that hold `size - 1`. */
export function indexWidth(size: number): number {
  if (size <= 0x100) return 1
  if (size <= 0x10000) return 2
  if (size <= 0x1000000) return 3
  return 4
}

/** The values at `positions` (all of them, copied, when undefined). */
export function gather(values: Float32Array, positions: Int32Array | undefined): Float32Array {
  if (positions === undefined) return values
  const out = new Float32Array(positions.length)
  for (let j = 0; j < positions.length; j++) out[j] = values[positions[j]!]!
  return out
}

/** `target[positions[j]] = values[j]` for each j (the inverse of gather). */
export function scatter(target: Float32Array, positions: Int32Array, values: Float32Array): void {
  for (let j = 0; j < positions.length; j++) target[positions[j]!] = values[j]!
}

/** Row-major [outer, len, inner] view of a shape around `axis`. */
function around(shape: readonly number[], axis: number): { outer: number; len: number; inner: number } {
  let outer = 1
  for (let i = 0; i < axis; i++) outer *= shape[i]!
  let inner = 1
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!
  return { outer, len: shape[axis]!, inner }
}

/** The axis positions (of `repeat * units * stride`) that belong to the listed units. */
export function slicePositions(slice: UnitSlice, len: number): Int32Array {
  const units = len / (slice.repeat * slice.stride)
  const out = new Int32Array(slice.repeat * slice.index.length * slice.stride)
  let j = 0
  for (let b = 0; b < slice.repeat; b++) {
    for (const u of slice.index) {
      const start = (b * units + u) * slice.stride
      for (let s = 0; s < slice.stride; s++) out[j++] = start + s
    }
  }
  return out.sort()
}

/** True when index `j` of an axis mask's axis is kept. */
export function isKept(bits: Uint8Array, j: number): boolean {
  return ((bits[j >> 3]! >> (j & 7)) & 1) === 1
}

/** Indices of an axis of length `len` an axis mask keeps. */
export function keptCount(bits: Uint8Array, len: number): number {
  let n = 0
  for (let j = 0; j < len; j++) if (isKept(bits, j)) n++
  return n
}

/** The axis mask bits keeping every index of `drop.length` whose `drop` byte is 0. */
export function keepBits(drop: Uint8Array): Uint8Array<ArrayBuffer> {
  const bits = new Uint8Array(Math.ceil(drop.length / 8))
  for (let j = 0; j < drop.length; j++) if (drop[j] === 0) bits[j >> 3]! |= 1 << (j & 7)
  return bits
}

/**
 * Marks (1) every coordinate of a tensor whose index along some slice's axis belongs to a listed
 * unit and, with `within`, whose index along its axis is kept.
 */
export function sliceMask(
  shape: readonly number[],
  slices: readonly UnitSlice[],
  within?: AxisMask,
): Uint8Array {
  const mask = sliceUnion(shape, slices)
  if (within === undefined) return mask
  const { len, inner } = around(shape, within.axis)
  for (let k = 0; k < mask.length; k++) if (!isKept(within.bits, Math.floor(k / inner) % len)) mask[k] = 0
  return mask
}

function sliceUnion(shape: readonly number[], slices: readonly UnitSlice[]): Uint8Array {
  const mask = new Uint8Array(valueCount(shape))
  for (const slice of slices) {
    const { outer, len, inner } = around(shape, slice.axis)
    const at = slicePositions(slice, len)
    for (let o = 0; o < outer; o++) {
      // Most sliced axes are the last (a dense kernel's outputs): one byte per position, no fill call.
      if (inner === 1) for (let j = 0; j < at.length; j++) mask[o * len + at[j]!] = 1
      else for (const l of at) mask.fill(1, (o * len + l) * inner, (o * len + l + 1) * inner)
    }
  }
  return mask
}

/** Flat indices of the coordinates the slices (and `within`) carry, increasing (maskPositions of sliceMask). */
export function slicedPositions(
  shape: readonly number[],
  slices: readonly UnitSlice[],
  within?: AxisMask,
): Int32Array {
  if (slices.length !== 1 || within !== undefined) return maskPositions(sliceMask(shape, slices, within))
  // One slice: the positions in order, without a tensor-sized mask.
  const slice = slices[0]!
  const { outer, len, inner } = around(shape, slice.axis)
  const at = slicePositions(slice, len)
  const out = new Int32Array(outer * at.length * inner)
  let j = 0
  for (let o = 0; o < outer; o++) {
    for (let a = 0; a < at.length; a++) {
      const start = (o * len + at[a]!) * inner
      for (let k = 0; k < inner; k++) out[j++] = start + k
    }
  }
  return out
}

/**
 * Coordinates the slices carry, without building the mask: the ones left out are those
 * outside every slice, (size / prod len_a) * prod (len_a - carried_a) for slices on distinct axes.
 */
export function sliceCount(
  shape: readonly number[],
  slices: readonly UnitSlice[],
  within?: AxisMask,
): number {
  if (within !== undefined) {
    // One slice on another axis (validated): a sub-tensor of carried units by kept indices.
    const s = slices[0]!
    const len = shape[within.axis]!
    const carried = s.repeat * s.index.length * s.stride
    return (valueCount(shape) / (shape[s.axis]! * len)) * carried * keptCount(within.bits, len)
  }
  const size = valueCount(shape)
  let rest = size
  for (const s of slices) {
    const len = shape[s.axis]!
    rest = (rest / len) * (len - s.repeat * s.index.length * s.stride)
  }
  return size - rest
}

/**
 * The block shape a value codec sees for a tensor's carried values: the tensor's own shape when
 * it is carried whole, the sub-tensor when one axis is sliced (its coordinates in row-major
 * order are the sub-tensor's), else a flat list.
 */
export function blockShapeOf(
  shape: readonly number[],
  slices: readonly UnitSlice[],
  count: number,
  within?: AxisMask,
): number[] {
  if (slices.length === 0) return [...shape]
  if (slices.length === 1) {
    const s = slices[0]!
    const out = [...shape]
    out[s.axis] = s.repeat * s.index.length * s.stride
    if (within !== undefined) out[within.axis] = keptCount(within.bits, shape[within.axis]!)
    return out
  }
  return [count]
}

/**
 * Encoding and decoding of sparse payloads (a selection codec plus a value
 * codec; layout in ./selection.ts). The decoder reads the index section first,
 * refusing an index out of range, out of order or repeated as soon as its bytes
 * are in, then hands the rest to the value codec's decoder; finish() scatters
 * the carried values into full-size tensors (zero elsewhere) and returns a mask
 * per tensor (1 = carried; undefined = the whole tensor).
 */
import type { NamedTensor } from '../../../model/types.ts'
import {
  DuplicateIndexError,
  InvalidScaleError,
  NonFiniteValueError,
  PayloadLengthError,
  SparseIndexRangeError,
  UnsortedIndexError,
} from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import type { ErrorFeedback } from './error-feedback.ts'
import type { DecodedPayload, EncodedPayload, PayloadDecoder, ValueCodec, ValueEncoder } from './index.ts'
import type { CarriedTensor, Selector } from './selection.ts'
import { gather, indexWidth, sliceMask } from './selection.ts'
import { valueCount } from './util.ts'

/** Payload bytes of a sparse frame: its index section and its values in `codec`. */
export function sparsePayloadBytes(
  layout: readonly TensorLayout[],
  carried: readonly CarriedTensor[],
  codec: ValueCodec,
): number {
  let bytes = 0
  for (const c of carried) bytes += c.indexBytes
  return bytes + codec.payloadBytes(carried.map((c, i) => ({ name: layout[i]!.name, shape: c.blockShape })))
}

/**
 * Selects what to send, encodes the index section and the values, and commits to the selector
 * what receivers will decode (so its error feedback includes the value codec's rounding); with
 * `feedback`, the carried values are sent with their rounding residuals (./error-feedback.ts).
 */
export function encodeSparse(
  selector: Selector,
  values: ValueEncoder,
  tensors: readonly NamedTensor[],
  feedback?: ErrorFeedback,
): EncodedPayload {
  const selected = selector.select(tensors)
  const positions = selected.map((s) => s.positions)
  // With error feedback the carried values go out with their residuals (./error-feedback.ts).
  const targets = feedback?.targets(tensors, positions)
  const blocks: NamedTensor[] = tensors.map((t, i) => ({
    name: t.name,
    shape: selected[i]!.blockShape,
    values: targets?.[i] ?? gather(t.values, positions[i]),
  }))
  const indexChunks: Uint8Array[] = []
  selected.forEach((s, i) => {
    if (s.info.count === undefined || s.positions === undefined) return
    indexChunks.push(indexBytes(s.positions, indexWidth(tensors[i]!.values.length)))
  })
  const valueChunks = values.encode(blocks)
  const decoded = roundTrip(values.codec, blocks, valueChunks)
  selector.commit(selected, decoded)
  if (targets !== undefined) feedback?.commit(targets, decoded, positions)
  return {
    tensors: selected.map((s) => s.info),
    chunks: [...indexChunks, ...valueChunks],
    sent: { positions, values: decoded },
  }
}

/** The blocks as a receiver decodes them; the values themselves when they are not decodable (a NaN). */
export function roundTrip(
  codec: ValueCodec,
  blocks: readonly NamedTensor[],
  chunks: readonly Uint8Array[],
): Float32Array[] {
  try {
    const decoder = codec.createDecoder(blocks)
    for (const c of chunks) decoder.push(c)
    return decoder.finish().values
  } catch (err) {
    if (err instanceof NonFiniteValueError || err instanceof InvalidScaleError) {
      return blocks.map((b) => b.values)
    }
    throw err
  }
}

/** Decoder of a sparse payload for a validated header. */
export class SparsePayloadDecoder implements PayloadDecoder {
  private readonly layout: readonly TensorLayout[]
  private readonly carried: readonly CarriedTensor[]
  private readonly indexTotal: number
  private readonly indices: (Int32Array | undefined)[]
  private readonly values: PayloadDecoder
  /** Index section: tensor being read, index within it, byte within the index, value so far. */
  private tensor = 0
  private entry = 0
  private byte = 0
  private partial = 0
  private indexSeen = 0

  constructor(layout: readonly TensorLayout[], carried: readonly CarriedTensor[], codec: ValueCodec) {
    this.layout = layout
    this.carried = carried
    this.indexTotal = carried.reduce((n, c) => n + c.indexBytes, 0)
    this.indices = carried.map((c) => (c.indexBytes > 0 ? new Int32Array(c.count) : undefined))
    this.values = codec.createDecoder(carried.map((c, i) => ({ name: layout[i]!.name, shape: c.blockShape })))
    this.skipDone()
  }

  push(bytes: Uint8Array): void {
    let i = 0
    while (i < bytes.byteLength && this.indexSeen < this.indexTotal) {
      const size = valueCount(this.layout[this.tensor]!.shape)
      const width = indexWidth(size)
      this.partial += bytes[i++]! * 2 ** (8 * this.byte)
      this.indexSeen++
      if (++this.byte < width) continue
      this.acceptIndex(this.partial, size)
      this.byte = 0
      this.partial = 0
      this.entry++
      this.skipDone()
    }
    if (i < bytes.byteLength) this.values.push(i === 0 ? bytes : bytes.subarray(i))
  }

  /** Checks one complete index against the tensor's size and the previous one. */
  private acceptIndex(index: number, size: number): void {
    const name = this.layout[this.tensor]!.name
    if (index >= size)
      throw new SparseIndexRangeError(`index ${index} of '${name}', which has ${size} values`)
    const list = this.indices[this.tensor]!
    if (this.entry > 0) {
      const prev = list[this.entry - 1]!
      if (index === prev) throw new DuplicateIndexError(`index ${index} of '${name}' listed twice`)
      if (index < prev) throw new UnsortedIndexError(`index ${index} of '${name}' after ${prev}`)
    }
    list[this.entry] = index
  }

  /** Moves past tensors whose indices are all read (or that have none). */
  private skipDone(): void {
    while (this.tensor < this.carried.length && this.entry >= (this.indices[this.tensor]?.length ?? 0)) {
      this.tensor++
      this.entry = 0
    }
  }

  finish(): DecodedPayload {
    if (this.indexSeen !== this.indexTotal) {
      throw new PayloadLengthError(
        `payload ends inside its index section (${this.indexSeen}/${this.indexTotal} bytes)`,
      )
    }
    const blocks = this.values.finish().values
    const values: Float32Array[] = []
    const masks: (Uint8Array | undefined)[] = []
    this.carried.forEach((c, i) => {
      const shape = this.layout[i]!.shape
      const size = valueCount(shape)
      const got = blocks[i]!
      const list = this.indices[i]
      if (list === undefined && (c.slices === undefined || c.slices.length === 0)) {
        values.push(got)
        masks.push(undefined)
        return
      }
      const out = new Float32Array(size)
      const mask = list === undefined ? sliceMask(shape, c.slices!, c.within) : new Uint8Array(size)
      if (list !== undefined) scatterMarking(out, mask, list, got)
      else scatterMasked(out, mask, got)
      values.push(out)
      masks.push(mask)
    })
    return { values, masks }
  }
}

// Module-level loops, not in the closures above (merge/steps/vector.ts says why).

/** The index section of one tensor: each position in `width` bytes, little-endian. */
function indexBytes(positions: Int32Array, width: number): Uint8Array {
  const out = new Uint8Array(positions.length * width)
  for (let j = 0; j < positions.length; j++) {
    const p = positions[j]!
    for (let b = 0; b < width; b++) out[j * width + b] = (p >>> (8 * b)) & 0xff
  }
  return out
}

/** `out[at[j]] = got[j]`, and marks `mask[at[j]]` 1, for each j. */
function scatterMarking(out: Float32Array, mask: Uint8Array, at: Int32Array, got: Float32Array): void {
  for (let j = 0; j < at.length; j++) {
    out[at[j]!] = got[j]!
    mask[at[j]!] = 1
  }
}

/** The values of `got`, in order, at the coordinates `mask` marks 1. */
function scatterMasked(out: Float32Array, mask: Uint8Array, got: Float32Array): void {
  let j = 0
  for (let k = 0; k < out.length; k++) if (mask[k] === 1) out[k] = got[j++]!
}

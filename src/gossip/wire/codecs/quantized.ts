/**
 * Quantised value codecs (int8, int4, int2): each block of values (a tensor, or the
 * values a sparse frame carries of it) as signed integers of `bits` bits with
 * one float32 scale per row, little-endian:
 *
 *   scales: rows x float32 | values: n x bits, in the block's row-major order
 *
 * (int4: two values a byte, the first in the low nibble; int2: five a byte in base 3, the
 * byte being the sum of (q_m + 1) x 3^m for its values m = 0..4, so 1.6 bits a value where
 * four 2-bit fields would take 2, and a byte above 242 is refused (ValueRangeError); a
 * block's values start on a byte boundary.) A row is an output unit: the index along the block's last
 * axis when it has two or more axes (a dense kernel [in, out] has `out` scales,
 * a conv kernel one per output channel); a rank-1 block (a bias, the value list
 * of a top-k frame) has one scale. With M = 2^(bits-1) - 1 (127, 7, 1), scale =
 * max |v| over the row / M and q = round(v / scale) in [-M, M], so a value comes
 * back within scale / 2 = max|row| / 2M (round to nearest), or within one scale
 * with stochastic rounding (`int8:stochastic`: q = floor(v / scale + u), u
 * uniform in [0, 1), unbiased: the expected decoded value is v). A row of zeros
 * has scale 0. With `int8:ef` / `int4:ef` the sender adds back what rounding
 * took from the frames before (error feedback, ./error-feedback.ts). Decoding
 * refuses a scale that is NaN, infinite or negative (InvalidScaleError) as soon
 * as its four bytes are in; a NaN or infinite input value makes its row's scale
 * so, and receivers refuse the frame as they do in raw-f32.
 */
import type { NamedTensor } from '../../../model/types.ts'
import { createRng, randomSeed } from '../../../util/rng.ts'
import {
  InvalidCodecSpecError,
  InvalidScaleError,
  PayloadLengthError,
  ValueRangeError,
} from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import { ERROR_FEEDBACK } from './error-feedback.ts'
import type { CodecOptions, DecodedPayload, PayloadDecoder, ValueCodec, ValueEncoder } from './index.ts'
import { valueCount } from './util.ts'

/** Bytes of one row scale (float32). */
export const SCALE_BYTES = 4

/** The argument that turns on stochastic rounding (`int8:stochastic`). */
export const STOCHASTIC = 'stochastic'

/** Bits per value a quantised codec may use (no value straddles two bytes). */
export type QuantBits = 2 | 4 | 8

/** Values a byte holds: int2's values are ternary, and 3^5 = 243 fits a byte. */
export function valuesPerByte(bits: QuantBits): number {
  return bits === 2 ? 5 : 8 / bits
}

/** Powers of 3 for int2's base-3 bytes. */
const POW3 = [1, 3, 9, 27, 81] as const

/** Largest int2 byte: five values of +1. */
const TRIT_BYTE_MAX = 242

/** The five values (-1, 0, +1) of each int2 byte 0..242, first value first. */
const TRITS: Int8Array = (() => {
  const t = new Int8Array((TRIT_BYTE_MAX + 1) * 5)
  for (let b = 0; b <= TRIT_BYTE_MAX; b++) {
    for (let m = 0, x = b; m < 5; m++, x = (x / 3) | 0) t[b * 5 + m] = (x % 3) - 1
  }
  return t
})()

/** Rows (scales) of a block: the length of its last axis for rank >= 2, else 1. */
export function quantRows(shape: readonly number[]): number {
  return shape.length >= 2 ? shape[shape.length - 1]! : 1
}

/** Payload bytes of one block. */
export function quantBlockBytes(shape: readonly number[], bits: QuantBits): number {
  return quantRows(shape) * SCALE_BYTES + Math.ceil(valueCount(shape) / valuesPerByte(bits))
}

/** Largest quantised magnitude for `bits`: the range is symmetric, so -2^(bits-1) is never written. */
export function quantMax(bits: QuantBits): number {
  return 2 ** (bits - 1) - 1
}

/** A quantised codec of `bits` bits per value (see the module comment). */
export function quantizedCodec(name: string, id: number, bits: QuantBits): ValueCodec {
  const codec: ValueCodec = {
    name,
    id,
    payloadBytes: (tensors) => tensors.reduce((n, t) => n + quantBlockBytes(t.shape, bits), 0),
    createEncoder: (arg, options) => createEncoder(codec, bits, arg, options),
    createDecoder: (tensors) => new QuantDecoder(tensors, bits),
  }
  return codec
}

function createEncoder(
  codec: ValueCodec,
  bits: QuantBits,
  arg: string | undefined,
  options: CodecOptions = {},
): ValueEncoder {
  if (arg !== undefined && arg !== STOCHASTIC && arg !== ERROR_FEEDBACK) {
    throw new InvalidCodecSpecError(
      `codec ${codec.name} takes no argument, '${STOCHASTIC}' or '${ERROR_FEEDBACK}', got '${arg}'`,
    )
  }
  const stochastic = arg === STOCHASTIC
  const rng = stochastic ? createRng(options.seed ?? randomSeed()) : undefined
  return {
    codec,
    spec: arg === undefined ? codec.name : `${codec.name}:${arg}`,
    errorFeedback: arg === ERROR_FEEDBACK,
    encode: (tensors) =>
      tensors.map((t) => encodeBlock(t, bits, rng === undefined ? undefined : () => rng.next())),
  }
}

/** One block's bytes: its row scales, then its values quantised with them. */
function encodeBlock(t: NamedTensor, bits: QuantBits, uniform: (() => number) | undefined): Uint8Array {
  const rows = quantRows(t.shape)
  const max = quantMax(bits)
  const n = t.values.length
  const out = new Uint8Array(quantBlockBytes(t.shape, bits))
  const view = new DataView(out.buffer)
  const maxAbs = new Float64Array(rows)
  const v = t.values
  // Row of value k is k % rows: kept as a wrapping counter, since a division per value is most of the cost.
  for (let k = 0, r = 0; k < n; k++) {
    const a = Math.abs(v[k]!)
    // A NaN poisons its row for good (every comparison with NaN is false): the receiver refuses the scale.
    if (a > maxAbs[r]! || Number.isNaN(a)) maxAbs[r] = a
    if (++r === rows) r = 0
  }
  // Ternary (int2, round to nearest): max-scaling would zero every value below half the row's
  // largest, most of a row; a threshold and scale fitted to the row keep far more of it.
  const ternary = bits === 2 && uniform === undefined ? ternaryFit(v, rows, maxAbs) : undefined
  const inverse = new Float64Array(rows)
  for (let r = 0; r < rows; r++) {
    const scale = ternary === undefined ? Math.fround(maxAbs[r]! / max) : ternary.scales[r]!
    view.setFloat32(r * SCALE_BYTES, scale, true)
    inverse[r] = scale > 0 && Number.isFinite(scale) ? 1 / scale : 0
  }
  const start = rows * SCALE_BYTES
  if (ternary !== undefined) {
    // Five values a byte in base 3: byte += (q + 1) * 3^m for the m-th value of the byte.
    const thresholds = ternary.thresholds
    for (let k = 0, r = 0, at = start, m = 0, digit = 1; k < n; k++) {
      const x = v[k]!
      const t = thresholds[r]!
      out[at]! += (x > t ? 2 : x < -t ? 0 : 1) * digit
      if (++r === rows) r = 0
      if (++m === 5) {
        m = 0
        digit = 1
        at++
      } else digit *= 3
    }
    return out
  }
  const perByte = valuesPerByte(bits)
  const mask = (1 << bits) - 1
  for (let k = 0, r = 0; k < n; k++) {
    const x = v[k]! * inverse[r]!
    const rounded = uniform === undefined ? Math.round(x) : Math.floor(x + uniform())
    const q = rounded > max ? max : rounded < -max ? -max : rounded
    if (bits === 8) out[start + k] = q & 0xff
    else if (bits === 2) out[start + Math.floor(k / perByte)]! += (q + 1) * POW3[k % perByte]!
    else out[start + Math.floor(k / perByte)]! |= (q & mask) << ((k % perByte) * bits)
    if (++r === rows) r = 0
  }
  return out
}

/** Share of a row's mean |v| below which int2 sends 0 (ternary weight networks: Li et al. 2016, 0.7). */
export const TERNARY_THRESHOLD = 0.7

/**
 * Per row: the threshold TERNARY_THRESHOLD x mean |v| and the scale that minimises the squared
 * error of the values beyond it (their mean |v|), after Li et al. 2016, "Ternary weight networks".
 * A row holding a NaN gets a NaN scale (refused by receivers, as max-scaling does).
 */
function ternaryFit(
  v: Float32Array,
  rows: number,
  maxAbs: Float64Array,
): { thresholds: Float64Array; scales: Float32Array } {
  const count = Math.ceil(v.length / rows)
  const thresholds = new Float64Array(rows)
  for (let k = 0, r = 0; k < v.length; k++) {
    thresholds[r] += Math.abs(v[k]!)
    if (++r === rows) r = 0
  }
  for (let r = 0; r < rows; r++) thresholds[r] = (TERNARY_THRESHOLD * thresholds[r]!) / count
  const sum = new Float64Array(rows)
  const kept = new Float64Array(rows)
  for (let k = 0, r = 0; k < v.length; k++) {
    const a = Math.abs(v[k]!)
    if (a > thresholds[r]!) {
      sum[r] += a
      kept[r]++
    }
    if (++r === rows) r = 0
  }
  const scales = new Float32Array(rows)
  for (let r = 0; r < rows; r++) {
    scales[r] = Number.isFinite(maxAbs[r]!) ? (kept[r]! > 0 ? sum[r]! / kept[r]! : 0) : maxAbs[r]!
  }
  return { thresholds, scales }
}

/** Reads blocks in order: each block's scales (checked as they complete), then its values. */
class QuantDecoder implements PayloadDecoder {
  private readonly bits: QuantBits
  private readonly blocks: { rows: number; n: number; valueBytes: number }[]
  private readonly out: Float32Array[]
  private readonly total: number
  /** Bytes consumed so far. */
  private seen = 0
  private block = 0
  /** Bytes consumed within the current block. */
  private offset = 0
  private scales = new Float32Array(0)
  private readonly scaleBytes = new Uint8Array(SCALE_BYTES)
  private readonly scaleView = new DataView(this.scaleBytes.buffer)

  constructor(tensors: readonly TensorLayout[], bits: QuantBits) {
    this.bits = bits
    this.blocks = tensors.map((t) => {
      const n = valueCount(t.shape)
      return { rows: quantRows(t.shape), n, valueBytes: Math.ceil(n / valuesPerByte(bits)) }
    })
    this.out = this.blocks.map((b) => new Float32Array(b.n))
    this.total = tensors.reduce((n, t) => n + quantBlockBytes(t.shape, bits), 0)
    this.startBlock()
  }

  private startBlock(): void {
    const b = this.blocks[this.block]
    this.offset = 0
    this.scales = new Float32Array(b?.rows ?? 0)
  }

  push(bytes: Uint8Array): void {
    if (bytes.byteLength > this.total - this.seen) {
      throw new PayloadLengthError(`payload exceeds its ${this.total} bytes`)
    }
    let i = 0
    while (i < bytes.byteLength) {
      const b = this.blocks[this.block]!
      const scaleEnd = b.rows * SCALE_BYTES
      if (this.offset < scaleEnd) {
        const take = Math.min(scaleEnd - this.offset, bytes.byteLength - i)
        for (let j = 0; j < take; j++) {
          const at = this.offset + j
          this.scaleBytes[at % SCALE_BYTES] = bytes[i + j]!
          if (at % SCALE_BYTES === SCALE_BYTES - 1) {
            const scale = this.scaleView.getFloat32(0, true)
            if (!(scale >= 0 && Number.isFinite(scale))) {
              throw new InvalidScaleError(
                `scale ${(at / SCALE_BYTES) | 0} of block ${this.block} is ${scale}`,
              )
            }
            this.scales[(at / SCALE_BYTES) | 0] = scale
          }
        }
        i += take
        this.offset += take
      } else {
        const first = this.offset - scaleEnd
        const take = Math.min(b.valueBytes - first, bytes.byteLength - i)
        const out = this.out[this.block]!
        const rows = b.rows
        const scales = this.scales
        const perByte = valuesPerByte(this.bits)
        // Values are read in order: the row is a wrapping counter rather than a division per value.
        let k = perByte * first
        let r = k % rows
        for (let j = 0; j < take; j++) {
          const byte = bytes[i + j]!
          if (this.bits === 8) {
            // Sign-extend the byte.
            out[k++] = ((byte << 24) >> 24) * scales[r]!
            if (++r === rows) r = 0
            continue
          }
          if (this.bits === 2 && byte > TRIT_BYTE_MAX) {
            throw new ValueRangeError(
              `int2 byte ${first + j} of block ${this.block} is ${byte} (at most ${TRIT_BYTE_MAX})`,
            )
          }
          // perByte values a byte (int2: base 3; int4: lowest bits first); a block's last byte may
          // hold fewer, and its unused places are ignored.
          for (let m = 0; m < perByte && k < b.n; m++) {
            const q =
              this.bits === 2
                ? TRITS[byte * 5 + m]!
                : // Shift the field to the top of 32 bits and back: sign extension.
                  (byte << (32 - this.bits * (m + 1))) >> (32 - this.bits)
            out[k++] = q * scales[r]!
            if (++r === rows) r = 0
          }
        }
        i += take
        this.offset += take
      }
      if (this.offset === scaleEnd + b.valueBytes) {
        this.block++
        this.startBlock()
      }
    }
    this.seen += bytes.byteLength
  }

  finish(): DecodedPayload {
    if (this.seen !== this.total) {
      throw new PayloadLengthError(`payload has ${this.seen} of its ${this.total} bytes`)
    }
    return { values: this.out }
  }
}

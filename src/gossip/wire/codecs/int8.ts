/**
 * int8: each block of values (a tensor, or the values a sparse frame carries of
 * it) as signed bytes with one float32 scale per row, little-endian:
 *
 *   scales: rows x float32 | values: n x int8, in the block's row-major order
 *
 * A row is an output unit: the index along the block's last axis when it has
 * two or more axes (a dense kernel [in, out] has `out` scales, a conv kernel one
 * per output channel); a rank-1 block (a bias, the value list of a top-k
 * frame) has one scale. scale = max |v| over the row / 127 and q = round(v /
 * scale) in [-127, 127], so a value comes back within scale / 2 = max|row| / 254
 * (round to nearest), or within one scale with stochastic rounding
 * (`int8:stochastic`: q = floor(v / scale + u), u uniform in [0, 1), unbiased:
 * the expected decoded value is v). A row of zeros has scale 0. Decoding refuses
 * a scale that is NaN, infinite or negative (InvalidScaleError) as soon as its
 * four bytes are in; a NaN or infinite input value makes its row's scale so,
 * and receivers refuse the frame as they do in raw-f32.
 */
import type { NamedTensor } from '../../../model/types.ts'
import { createRng, randomSeed } from '../../../util/rng.ts'
import { InvalidCodecSpecError, InvalidScaleError, PayloadLengthError } from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import type { CodecOptions, DecodedPayload, PayloadDecoder, ValueCodec, ValueEncoder } from './index.ts'
import { valueCount } from './util.ts'

/** Largest quantised magnitude: the range is symmetric, so -128 is never written. */
export const INT8_MAX = 127

/** Bytes of one row scale (float32). */
export const INT8_SCALE_BYTES = 4

/** The argument that turns on stochastic rounding (`int8:stochastic`). */
export const INT8_STOCHASTIC = 'stochastic'

/** Rows (scales) of a block: the length of its last axis for rank >= 2, else 1. */
export function int8Rows(shape: readonly number[]): number {
  return shape.length >= 2 ? shape[shape.length - 1]! : 1
}

/** Payload bytes of one block. */
export function int8BlockBytes(shape: readonly number[]): number {
  return int8Rows(shape) * INT8_SCALE_BYTES + valueCount(shape)
}

/** The int8 codec (header id 3). */
export const INT8: ValueCodec = {
  name: 'int8',
  id: 3,
  payloadBytes: (tensors) => tensors.reduce((n, t) => n + int8BlockBytes(t.shape), 0),
  createEncoder: (arg, options) => createInt8Encoder(arg, options),
  createDecoder: (tensors) => new Int8Decoder(tensors),
}

function createInt8Encoder(arg: string | undefined, options: CodecOptions = {}): ValueEncoder {
  if (arg !== undefined && arg !== INT8_STOCHASTIC) {
    throw new InvalidCodecSpecError(`codec int8 takes no argument or '${INT8_STOCHASTIC}', got '${arg}'`)
  }
  const stochastic = arg === INT8_STOCHASTIC
  const rng = stochastic ? createRng(options.seed ?? randomSeed()) : undefined
  return {
    codec: INT8,
    spec: stochastic ? `int8:${INT8_STOCHASTIC}` : 'int8',
    encode: (tensors) => tensors.map((t) => encodeBlock(t, rng === undefined ? undefined : () => rng.next())),
  }
}

/** One block's bytes: its row scales, then its values quantised with them. */
function encodeBlock(t: NamedTensor, uniform: (() => number) | undefined): Uint8Array {
  const rows = int8Rows(t.shape)
  const n = t.values.length
  const out = new Uint8Array(rows * INT8_SCALE_BYTES + n)
  const view = new DataView(out.buffer)
  const maxAbs = new Float64Array(rows)
  const v = t.values
  for (let k = 0; k < n; k++) {
    const a = Math.abs(v[k]!)
    const r = k % rows
    // A NaN poisons its row for good (every comparison with NaN is false): the receiver refuses the scale.
    if (a > maxAbs[r]! || Number.isNaN(a)) maxAbs[r] = a
  }
  const inverse = new Float64Array(rows)
  for (let r = 0; r < rows; r++) {
    const scale = Math.fround(maxAbs[r]! / INT8_MAX)
    view.setFloat32(r * INT8_SCALE_BYTES, scale, true)
    inverse[r] = scale > 0 && Number.isFinite(scale) ? 1 / scale : 0
  }
  const q = new Int8Array(out.buffer, rows * INT8_SCALE_BYTES, n)
  for (let k = 0; k < n; k++) {
    const x = v[k]! * inverse[k % rows]!
    const rounded = uniform === undefined ? Math.round(x) : Math.floor(x + uniform())
    q[k] = rounded > INT8_MAX ? INT8_MAX : rounded < -INT8_MAX ? -INT8_MAX : rounded
  }
  return out
}

/** Reads blocks in order: each block's scales (checked as they complete), then its values. */
class Int8Decoder implements PayloadDecoder {
  private readonly blocks: { rows: number; n: number }[]
  private readonly out: Float32Array[]
  private readonly total: number
  /** Bytes consumed so far. */
  private seen = 0
  private block = 0
  /** Bytes consumed within the current block. */
  private offset = 0
  private scales = new Float32Array(0)
  private readonly scaleBytes = new Uint8Array(INT8_SCALE_BYTES)
  private readonly scaleView = new DataView(this.scaleBytes.buffer)

  constructor(tensors: readonly TensorLayout[]) {
    this.blocks = tensors.map((t) => ({ rows: int8Rows(t.shape), n: valueCount(t.shape) }))
    this.out = this.blocks.map((b) => new Float32Array(b.n))
    this.total = tensors.reduce((n, t) => n + int8BlockBytes(t.shape), 0)
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
      const scaleEnd = b.rows * INT8_SCALE_BYTES
      if (this.offset < scaleEnd) {
        const take = Math.min(scaleEnd - this.offset, bytes.byteLength - i)
        for (let j = 0; j < take; j++) {
          const at = this.offset + j
          this.scaleBytes[at % INT8_SCALE_BYTES] = bytes[i + j]!
          if (at % INT8_SCALE_BYTES === INT8_SCALE_BYTES - 1) {
            const scale = this.scaleView.getFloat32(0, true)
            if (!(scale >= 0 && Number.isFinite(scale))) {
              throw new InvalidScaleError(
                `scale ${(at / INT8_SCALE_BYTES) | 0} of block ${this.block} is ${scale}`,
              )
            }
            this.scales[(at / INT8_SCALE_BYTES) | 0] = scale
          }
        }
        i += take
        this.offset += take
      } else {
        const first = this.offset - scaleEnd
        const take = Math.min(b.n - first, bytes.byteLength - i)
        const out = this.out[this.block]!
        const rows = b.rows
        for (let j = 0; j < take; j++) {
          const k = first + j
          // Sign-extend the byte.
          out[k] = ((bytes[i + j]! << 24) >> 24) * this.scales[k % rows]!
        }
        i += take
        this.offset += take
      }
      if (this.offset === scaleEnd + b.n) {
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

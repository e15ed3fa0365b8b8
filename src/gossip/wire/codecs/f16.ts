/**
 * f16: each value as an IEEE 754 binary16 (half), little-endian, tensors
 * concatenated in header order: half the bytes of raw-f32.
 *
 * Encoding rounds to nearest, ties to even, so a value in the normal range
 * (2^-14 <= |x| <= 65504) comes back within a relative error of 2^-11, and a
 * smaller one within 2^-25 absolute (subnormals; at or below 2^-25 it becomes a
 * signed zero). A finite value beyond +-65504 is clamped to +-65504 rather
 * than refused: one huge weight should not stop a node from gossiping, and
 * rounding it to infinity would make every receiver reject the frame. NaN and
 * +-Inf stay NaN and +-Inf, so receivers refuse them as they do in raw-f32.
 * Decoding refuses any half whose exponent bits are all ones (NaN, +-Inf) as
 * soon as its two bytes have arrived.
 */
import type { NamedTensor } from '../../../model/types.ts'
import { NonFiniteValueError, PayloadLengthError } from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import type { DecodedPayload, PayloadDecoder, ValueCodec } from './index.ts'
import { HOST_IS_LITTLE_ENDIAN, plainEncoder, totalValueCount, valueCount } from './util.ts'

/** Bytes per value on the wire. */
export const F16_BYTES = 2

/** Largest finite half; larger finite inputs are clamped to it. */
export const F16_MAX = 65504

/** The f16 codec (header id 2). */
export const F16: ValueCodec = {
  name: 'f16',
  id: 2,
  payloadBytes: (tensors) => totalValueCount(tensors) * F16_BYTES,
  createEncoder: (arg) => plainEncoder(F16, arg, encodeF16),
  createDecoder: (tensors) => new F16Decoder(tensors),
}

/** Exponent bits of a half: all ones means NaN or +-Inf. */
const F16_EXPONENT_MASK = 0x7c00

/**
 * The half nearest to a float32 (given as its bit pattern), ties to even;
 * finite values beyond +-65504 clamp to +-65504, NaN and +-Inf stay so.
 */
export function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000
  const abs = bits & 0x7fffffff
  if (abs >= 0x7f800000) return sign | (abs > 0x7f800000 ? 0x7e00 : 0x7c00)
  // Above 65504 (0x477fe000): clamp. Values up to 65520 would round to 65504 anyway.
  if (abs > 0x477fe000) return sign | 0x7bff
  if (abs >= 0x38800000) {
    // Normal half (|x| >= 2^-14): round the 23-bit mantissa to 10 bits at bit 13,
    // ties to even (+0xfff, +1 when the kept part is odd; a carry bumps the
    // exponent, which is right), then rebias the exponent from 127 to 15.
    const rounded = abs + 0xfff + ((abs >>> 13) & 1)
    return sign | ((rounded - 0x38000000) >>> 13)
  }
  // Subnormal half or zero: the value in units of 2^-24, rounded ties to even.
  const exponent = abs >>> 23
  if (exponent < 102) return sign // |x| < 2^-25: rounds to zero
  const mantissa = (abs & 0x7fffff) | 0x800000
  const shift = 126 - exponent // 14..24
  let q = mantissa >>> shift
  const rest = mantissa & ((1 << shift) - 1)
  const half = 1 << (shift - 1)
  if (rest > half || (rest === half && (q & 1) === 1)) q++
  return sign | q // q = 0x400 (the smallest normal) when rounding carries
}

/** float32 bit patterns of the 1024 subnormal half magnitudes (mantissa * 2^-24, exact in float32). */
const SUBNORMAL_BITS = (() => {
  const values = new Float32Array(1024)
  for (let m = 0; m < 1024; m++) values[m] = m * 2 ** -24
  return new Uint32Array(values.buffer)
})()

/**
 * float32 bit pattern of a finite half (exponent bits not all ones): a normal
 * half only needs its exponent rebiased from 15 to 127 (+112 << 23).
 */
function finiteHalfToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16
  if ((h & F16_EXPONENT_MASK) === 0) return sign | SUBNORMAL_BITS[h & 0x3ff]!
  return sign | (((h & 0x7fff) << 13) + 0x38000000)
}

const scratchBits = new Uint32Array(1)
const scratchValue = new Float32Array(scratchBits.buffer)

/** The float32 value of a half bit pattern (NaN and +-Inf included). */
export function f16BitsToF32(h: number): number {
  const half = h & 0xffff
  const bits =
    (half & F16_EXPONENT_MASK) === F16_EXPONENT_MASK
      ? ((half & 0x8000) << 16) | 0x7f800000 | ((half & 0x3ff) << 13)
      : finiteHalfToF32Bits(half)
  scratchBits[0] = bits
  return scratchValue[0]!
}

function encodeF16(tensors: readonly NamedTensor[]): Uint8Array[] {
  return tensors.map((t) => f32ToF16Bytes(t.values))
}

/**
 * The values as little-endian halves. Module level, not in the closure that calls it
 * (merge/steps/vector.ts says why).
 */
function f32ToF16Bytes(values: Float32Array): Uint8Array {
  const n = values.length
  const bits = new Uint32Array(values.buffer, values.byteOffset, n)
  const out = new Uint8Array(n * F16_BYTES)
  // A Uint32Array over a Float32Array holds each float's bit pattern, whatever the host's byte order.
  if (HOST_IS_LITTLE_ENDIAN) {
    const halves = new Uint16Array(out.buffer)
    for (let i = 0; i < n; i++) halves[i] = f32BitsToF16Bits(bits[i]!)
  } else {
    for (let i = 0; i < n; i++) {
      const h = f32BitsToF16Bits(bits[i]!)
      out[2 * i] = h & 0xff
      out[2 * i + 1] = h >>> 8
    }
  }
  return out
}

/** Converts halves to float32 as their bytes arrive; a value split across chunks waits for its second byte. */
class F16Decoder implements PayloadDecoder {
  private readonly tensors: readonly TensorLayout[]
  private readonly out: Float32Array
  /** The output's bit patterns, written directly (host order, like any typed array). */
  private readonly outBits: Uint32Array
  /** Values decoded so far. */
  private count = 0
  /** First byte of a value whose second byte has not arrived, or -1. */
  private pending = -1

  constructor(tensors: readonly TensorLayout[]) {
    this.tensors = tensors
    this.out = new Float32Array(totalValueCount(tensors))
    this.outBits = new Uint32Array(this.out.buffer)
  }

  push(bytes: Uint8Array): void {
    const have = this.count * F16_BYTES + (this.pending >= 0 ? 1 : 0)
    if (bytes.byteLength > this.out.length * F16_BYTES - have) {
      throw new PayloadLengthError(`payload exceeds its ${this.out.length * F16_BYTES} bytes`)
    }
    let i = 0
    if (this.pending >= 0 && bytes.byteLength > 0) {
      this.put(this.pending | (bytes[0]! << 8))
      this.pending = -1
      i = 1
    }
    const pairs = (bytes.byteLength - i) >>> 1
    if (HOST_IS_LITTLE_ENDIAN && (bytes.byteOffset + i) % 2 === 0) {
      // Aligned: read the halves as host words.
      const halves = new Uint16Array(bytes.buffer, bytes.byteOffset + i, pairs)
      for (let j = 0; j < pairs; j++) this.put(halves[j]!)
    } else {
      for (let j = 0; j < pairs; j++) this.put(bytes[i + 2 * j]! | (bytes[i + 2 * j + 1]! << 8))
    }
    i += 2 * pairs
    if (i < bytes.byteLength) this.pending = bytes[i]!
  }

  private put(h: number): void {
    if ((h & F16_EXPONENT_MASK) === F16_EXPONENT_MASK) {
      throw new NonFiniteValueError(`value ${this.count} of the payload is NaN or infinite`)
    }
    this.outBits[this.count++] = finiteHalfToF32Bits(h)
  }

  finish(): DecodedPayload {
    if (this.count !== this.out.length || this.pending >= 0) {
      throw new PayloadLengthError(
        `payload has ${this.count * F16_BYTES + (this.pending >= 0 ? 1 : 0)} of its ${this.out.length * F16_BYTES} bytes`,
      )
    }
    const values: Float32Array[] = []
    let off = 0
    for (const t of this.tensors) {
      const n = valueCount(t.shape)
      values.push(this.out.subarray(off, off + n))
      off += n
    }
    return { values }
  }
}

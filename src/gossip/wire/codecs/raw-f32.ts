/**
 * raw-f32: the tensors' float32 values, little-endian, concatenated in header
 * order, row-major: the wire format since version 1, unchanged. On
 * little-endian hosts the sender writes views of the state's values and the
 * receiver's tensors are views of the one payload buffer (one copy, from the
 * stream into that buffer).
 */
import type { NamedTensor } from '../../../model/types.ts'
import { NonFiniteValueError, PayloadLengthError } from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import type { DecodedPayload, PayloadDecoder, ValueCodec } from './index.ts'
import { HOST_IS_LITTLE_ENDIAN, plainEncoder, totalValueCount, valueCount } from './util.ts'

/** Bytes per float32 value on the wire. */
export const F32_BYTES = 4

/** The raw-f32 codec (header id 1). */
export const RAW_F32: ValueCodec = {
  name: 'raw-f32',
  id: 1,
  payloadBytes: (tensors) => totalValueCount(tensors) * F32_BYTES,
  createEncoder: (arg) => plainEncoder(RAW_F32, arg, encodeRawF32),
  createDecoder: (tensors) => new RawF32Decoder(tensors),
}

function encodeRawF32(tensors: readonly NamedTensor[]): Uint8Array[] {
  return tensors.map((t) => f32ToLittleEndianBytes(t.values))
}

function f32ToLittleEndianBytes(values: Float32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
  const out = new Uint8Array(values.byteLength)
  const view = new DataView(out.buffer)
  for (let i = 0; i < values.length; i++) view.setFloat32(i * F32_BYTES, values[i]!, true)
  return out
}

/** Copies bytes into one payload buffer, checking each completed value while it is in cache. */
class RawF32Decoder implements PayloadDecoder {
  private readonly tensors: readonly TensorLayout[]
  private readonly buffer: Uint8Array
  private filled = 0
  /** Bytes [0, checked) hold finite values. */
  private checked = 0

  constructor(tensors: readonly TensorLayout[]) {
    this.tensors = tensors
    this.buffer = new Uint8Array(totalValueCount(tensors) * F32_BYTES)
  }

  push(bytes: Uint8Array): void {
    if (bytes.byteLength > this.buffer.byteLength - this.filled) {
      throw new PayloadLengthError(`payload exceeds its ${this.buffer.byteLength} bytes`)
    }
    this.buffer.set(bytes, this.filled)
    this.filled += bytes.byteLength
    const upTo = this.filled - (this.filled % F32_BYTES)
    if (upTo > this.checked) {
      assertFiniteF32(this.buffer, this.checked, upTo)
      this.checked = upTo
    }
  }

  finish(): DecodedPayload {
    if (this.filled !== this.buffer.byteLength) {
      throw new PayloadLengthError(`payload has ${this.filled} of its ${this.buffer.byteLength} bytes`)
    }
    const values: Float32Array[] = []
    let off = 0
    for (const t of this.tensors) {
      const n = valueCount(t.shape)
      values.push(littleEndianBytesToF32(this.buffer, off, n))
      off += n * F32_BYTES
    }
    return { values }
  }
}

function littleEndianBytesToF32(bytes: Uint8Array, offset: number, length: number): Float32Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Float32Array(bytes.buffer, bytes.byteOffset + offset, length)
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, length * F32_BYTES)
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) out[i] = view.getFloat32(i * F32_BYTES, true)
  return out
}

/**
 * Throw NonFiniteValueError if a little-endian float32 in bytes [start, end) of
 * a 4-byte aligned buffer is NaN or +-Inf: exactly the patterns whose exponent
 * bits are all ones. `start` and `end` are multiples of 4.
 */
export function assertFiniteF32(bytes: Uint8Array, start: number, end: number): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + start, (end - start) / F32_BYTES)
  // The payload is little-endian; pick the mask that finds the exponent in a host word.
  const mask = HOST_IS_LITTLE_ENDIAN ? 0x7f800000 : 0x0000807f
  for (let i = 0; i < words.length; i++) {
    if ((words[i]! & mask) === mask) {
      throw new NonFiniteValueError(`value ${start / F32_BYTES + i} of the payload is NaN or infinite`)
    }
  }
}

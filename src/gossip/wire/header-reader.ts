/**
 * Protobuf decoding of a ModelHeader that refuses varints too wide for their
 * field. The generated decoder reads every tag, length, uint32 and enum as 32
 * bits and drops the bits above, so a codec of 2^32+1 would read as 1 and a
 * dimension of 2^32+784 as 784. Here the reader's 32-bit varint is replaced by
 * one that throws MalformedFrameError when a value does not fit: a value that
 * does not fit its field is malformed, not truncated. Varints of 32-bit fields
 * that fit are read as before (zero padding up to 10 bytes included), so the
 * bytes of valid headers mean what they always meant.
 */
import { reader as createReader, type Reader } from 'protons-runtime'
import { MAX_COORDINATE_DIMS, MAX_RANK, MAX_SLICE_UNITS, MAX_TENSORS } from '../constants.ts'
import { MalformedFrameError } from '../errors.ts'
import { ModelHeader } from './model.ts'

/** Longest varint protobuf allows (64 bits in 7-bit groups). */
const MAX_VARINT_BYTES = 10

/** A varint that must fit in 32 bits; throws MalformedFrameError otherwise or when it runs past the end. */
function strictUint32(this: Reader): number {
  const { buf, len } = this
  let pos = this.pos
  let value = 0
  let tooWide = false
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (pos >= len) throw new MalformedFrameError('header ends inside a varint')
    const b = buf[pos++]!
    if (i < 4) value += (b & 0x7f) * 2 ** (7 * i)
    else if (i === 4) {
      value += (b & 0x0f) * 2 ** 28
      if ((b & 0x70) !== 0) tooWide = true
    } else if ((b & 0x7f) !== 0) tooWide = true
    if (b < 0x80) {
      if (tooWide) throw new MalformedFrameError(`varint at offset ${this.pos} does not fit in 32 bits`)
      this.pos = pos
      return value
    }
  }
  throw new MalformedFrameError(`varint at offset ${this.pos} is longer than ${MAX_VARINT_BYTES} bytes`)
}

/** Decode a ModelHeader's protobuf bytes with the list limits of constants.ts; throws MalformedFrameError. */
export function readModelHeader(bytes: Uint8Array): ModelHeader {
  const reader = createReader(bytes)
  reader.uint32 = strictUint32
  try {
    return ModelHeader.codec().decode(reader, undefined, {
      limits: {
        tensors: MAX_TENSORS,
        tensors$: { shape: MAX_RANK, slices: MAX_RANK, slices$: { index: MAX_SLICE_UNITS } },
        coordinate: { vec: MAX_COORDINATE_DIMS },
      },
    })
  } catch (err) {
    if (err instanceof MalformedFrameError) throw err
    throw new MalformedFrameError(`undecodable header: ${(err as Error)?.message}`)
  }
}

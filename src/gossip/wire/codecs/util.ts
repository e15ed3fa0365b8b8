/** Byte-order and size helpers shared by the value codecs. */
import { InvalidCodecSpecError } from '../../errors.ts'
import type { ValueCodec, ValueEncoder } from './index.ts'

/** True when typed arrays are little-endian, so payload bytes can be viewed without a byte swap. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Values a tensor of this shape holds (a product of small integers: exact in a double). */
export function valueCount(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
}

/** Values all tensors of a layout hold together. */
export function totalValueCount(tensors: readonly { shape: readonly number[] }[]): number {
  let n = 0
  for (const t of tensors) n += valueCount(t.shape)
  return n
}

/** The encoder of a codec that takes no argument (raw-f32, f16); throws InvalidCodecSpecError when given one. */
export function plainEncoder(
  codec: ValueCodec,
  arg: string | undefined,
  encode: ValueEncoder['encode'],
): ValueEncoder {
  if (arg !== undefined)
    throw new InvalidCodecSpecError(`codec ${codec.name} takes no argument, got '${arg}'`)
  return { codec, spec: codec.name, encode }
}

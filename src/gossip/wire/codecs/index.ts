/**
 * Value codecs: how a model's tensor values travel after the frame header.
 *
 * Each codec declares the id the header's `codec` field carries, the payload
 * size of a list of tensors (computed from the header alone and checked
 * against the frame limit before anything is allocated), an encoder, and an
 * incremental decoder that validates values as the bytes arrive.
 *
 * The interface leaves room for the compressed codecs to come: a codec with
 * per-tensor parameters (topk's count, int8's scales) reads them from a
 * TensorInfo header field that decodeHeader passes through in the tensor list,
 * so a variable size is still declared before the payload; a stateful encoder
 * (topk's error feedback) is what `createEncoder` returns; a sparse or partial
 * codec adds which coordinates each tensor carries to DecodedPayload, and the
 * merge touches only those. The header's codec field is a plain uint32, so a
 * composed codec (`partial:0.1+int8`) can later become a repeated field whose
 * single-codec frames keep the same bytes.
 *
 * A new codec is a module beside this one plus one line in VALUE_CODECS.
 */
import type { NamedTensor } from '../../../model/types.ts'
import { InvalidCodecSpecError } from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import { F16 } from './f16.ts'
import { RAW_F32 } from './raw-f32.ts'

/** One value codec; see the module comment. */
export interface ValueCodec {
  /** Name in a codec spec (`--codec`), in logs and in /status. */
  readonly name: string
  /** Value of the header's `codec` field: unique, never 0 (0 is "unset"). */
  readonly id: number
  /**
   * Payload bytes for these tensors, from the header alone. Called only on a
   * validated tensor list whose value count is already bounded.
   */
  payloadBytes(tensors: readonly TensorLayout[]): number
  /** The sender's side; `arg` is what follows `name:` in a spec (undefined when there is none). */
  createEncoder(arg: string | undefined): ValueEncoder
  /** A decoder for one payload of `payloadBytes(tensors)` bytes (allocates its output). */
  createDecoder(tensors: readonly TensorLayout[]): PayloadDecoder
}

/** Encodes the values of one model after another (may keep state between calls). */
export interface ValueEncoder {
  /** The codec whose id goes in the header. */
  readonly codec: ValueCodec
  /** The spec it was built from, e.g. `f16`. */
  readonly spec: string
  /** Payload chunks for the tensors, in header order; they may be views of the values (do not mutate while sending). */
  encode(tensors: readonly NamedTensor[]): Uint8Array[]
}

/** Incremental decoder of one payload. */
export interface PayloadDecoder {
  /**
   * The next payload bytes, in order, in chunks of any size. Throws a typed
   * error (NonFiniteValueError, PayloadLengthError, ...) as soon as the bytes
   * seen so far are known to be bad.
   */
  push(bytes: Uint8Array): void
  /** The tensors' values; throws PayloadLengthError unless every payload byte was pushed. */
  finish(): DecodedPayload
}

/** Decoded values of a payload, one array per tensor in header order. */
export interface DecodedPayload {
  values: Float32Array[]
}

/** Codec used when none is configured: the original wire format, understood by every node. */
export const DEFAULT_CODEC = RAW_F32.name

/** Every codec this node reads and writes. */
export const VALUE_CODECS: readonly ValueCodec[] = [RAW_F32, F16]

/** Names accepted by `--codec`. */
export const CODEC_NAMES: readonly string[] = VALUE_CODECS.map((c) => c.name)

const BY_ID = new Map(VALUE_CODECS.map((c) => [c.id, c]))
const BY_NAME = new Map(VALUE_CODECS.map((c) => [c.name, c]))

/** The codec a header's `codec` field names, or undefined for an id this node does not know. */
export function codecById(id: number): ValueCodec | undefined {
  return BY_ID.get(id)
}

/** An encoder for a spec such as `raw-f32` or `f16` (`name[:arg]`); throws InvalidCodecSpecError. */
export function parseCodecSpec(spec: string): ValueEncoder {
  const colon = spec.indexOf(':')
  const name = colon < 0 ? spec : spec.slice(0, colon)
  const arg = colon < 0 ? undefined : spec.slice(colon + 1)
  const codec = BY_NAME.get(name)
  if (codec === undefined) {
    throw new InvalidCodecSpecError(`unknown codec '${spec}' (known: ${CODEC_NAMES.join(', ')})`)
  }
  return codec.createEncoder(arg)
}

/**
 * Value codecs: how a model's tensor values travel after the frame header;
 * selection codecs: which of them a frame carries.
 *
 * Each value codec declares the id the header's `codec` field carries, the
 * payload size of a list of tensors (computed from the header alone and checked
 * against the frame limit before anything is allocated), an encoder, and an
 * incremental decoder that validates values as the bytes arrive. A value codec
 * with per-row parameters (int8's scales) puts them in its payload, at a size
 * the shapes fix.
 *
 * A selection codec (topk, partial; ./selection.ts) picks coordinates or whole
 * units and keeps the sender's reference between pushes (error feedback); the
 * header's `selection` field names it, each tensor's header entry says what it
 * carries (a count, or unit slices), and the carried values travel in the value
 * codec, one block per tensor. A receiver gets a mask per tensor and merges only
 * what was carried. A codec spec is `[selection:fraction+]value[:arg]`:
 * `raw-f32`, `f16`, `int8`, `int4`, `int8:stochastic`, `int4:ef` (error feedback,
 * ./error-feedback.ts), `topk:0.1` (raw-f32 values), `partial:0.1+int8`.
 *
 * A new codec is a module beside this one plus one line in VALUE_CODECS or
 * SELECTION_CODECS.
 */
import type { NamedTensor } from '../../../model/types.ts'
import { InvalidCodecSpecError } from '../../errors.ts'
import type { TensorLayout } from '../codec.ts'
import { ErrorFeedback, encodeWithFeedback } from './error-feedback.ts'
import { F16 } from './f16.ts'
import { INT2 } from './int2.ts'
import { INT4 } from './int4.ts'
import { INT8 } from './int8.ts'
import { PARTIAL } from './partial.ts'
import { RAW_F32 } from './raw-f32.ts'
import type { CarriedInfo, CarriedTensor, SelectionCodec, Selector } from './selection.ts'
import { encodeSparse, SparsePayloadDecoder, sparsePayloadBytes } from './sparse.ts'
import { TOPK } from './topk.ts'

export type { CarriedInfo, CarriedTensor, SelectionCodec, Selector }

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
  createEncoder(arg: string | undefined, options?: CodecOptions): ValueEncoder
  /** A decoder for one payload of `payloadBytes(tensors)` bytes (allocates its output). */
  createDecoder(tensors: readonly TensorLayout[]): PayloadDecoder
}

/** Options of an encoder. */
export interface CodecOptions {
  /** Seeds int8's stochastic rounding (default: a random seed). */
  seed?: number
  /**
   * Per input feature, 1 where this node's data (almost) never activates it (data/quiet.ts):
   * partial frames leave the first dense layer's weights from those inputs out (./partial.ts).
   */
  quietInputs?: Uint8Array
}

/** Encodes the values of one model after another (may keep state between calls). */
export interface ValueEncoder {
  /** The codec whose id goes in the header. */
  readonly codec: ValueCodec
  /** The spec it was built from, e.g. `f16`. */
  readonly spec: string
  /** The spec asks for error feedback (`int4:ef`): the model encoder adds the residuals (./error-feedback.ts). */
  readonly errorFeedback?: boolean
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
  /**
   * Sparse frames: per tensor, 1 where a value was carried (the others are 0 in `values`);
   * undefined for a tensor carried whole. Absent for a dense frame.
   */
  masks?: (Uint8Array | undefined)[]
}

/** Per tensor, the values a frame carries as receivers decode them. */
export interface SentValues {
  /** Flat indices of `values[i]` in tensor i, increasing; undefined: the whole tensor. */
  positions: readonly (Int32Array | undefined)[]
  values: readonly Float32Array[]
}

/** A model's payload and what the header must say about it. */
export interface EncodedPayload {
  /** Per tensor, what it carries (empty for dense frames). */
  tensors: CarriedInfo[]
  chunks: Uint8Array[]
  /** What receivers will decode, when the encoder computed it anyway (sparse frames do). */
  sent?: SentValues
}

/** What encodeModel needs: a codec spec turned into header fields and a payload. */
export interface ModelEncoder {
  /** The canonical spec, e.g. `partial:0.1+int8`: the name pushes are counted under. */
  readonly spec: string
  /** The value codec (header `codec`). */
  readonly codec: ValueCodec
  /** The selection codec (header `selection`); undefined for dense frames. */
  readonly selection?: SelectionCodec
  /** Encodes one model's tensors; a stateful encoder (topk, partial) advances its reference. */
  encodePayload(tensors: readonly NamedTensor[]): EncodedPayload
}

/** Codec used when none is configured: the original wire format, understood by every node. */
export const DEFAULT_CODEC = RAW_F32.name

/**
 * The daemon's default for `--codec`: raw-f32. bench:compression (16 simulated peers) put int4 at
 * raw-f32's accuracy with 7.9x fewer bytes, but on real processes (`testbed --peers 4 --duration
 * 60`, run one after the other on an idle 2-core machine, 2026-11-30) int4 ended at 0.920 mean
 * (worst 0.897) against raw-f32's 0.954 (worst 0.932): a 3.4-point loss, from round to nearest
 * sending the same error in every frame. `int4:ef` (error feedback) removes most of it (simulation:
 * 96.15 % against raw-f32's 96.93 %, last-5 95.90 % against 96.11 %; docs/BENCHMARKS.md), not all
 * of it, so the default stays raw-f32; `--codec int4:ef --max-upload 150kbit` is the setting for a
 * 160 kbit/s uplink.
 */
export const DEFAULT_PUSH_CODEC = RAW_F32.name

/** Every value codec this node reads and writes. */
export const VALUE_CODECS: readonly ValueCodec[] = [RAW_F32, F16, INT8, INT4, INT2]

/** Every selection codec this node reads and writes. */
export const SELECTION_CODECS: readonly SelectionCodec[] = [TOPK, PARTIAL]

/** Value codec names accepted by `--codec`. */
export const CODEC_NAMES: readonly string[] = VALUE_CODECS.map((c) => c.name)

/** Selection codec names accepted by `--codec` (with a fraction, before a `+`). */
export const SELECTION_NAMES: readonly string[] = SELECTION_CODECS.map((c) => c.name)

const BY_ID = new Map(VALUE_CODECS.map((c) => [c.id, c]))
const BY_NAME = new Map(VALUE_CODECS.map((c) => [c.name, c]))
const SELECTION_BY_ID = new Map(SELECTION_CODECS.map((c) => [c.id, c]))
const SELECTION_BY_NAME = new Map(SELECTION_CODECS.map((c) => [c.name, c]))

/** The codec a header's `codec` field names, or undefined for an id this node does not know. */
export function codecById(id: number): ValueCodec | undefined {
  return BY_ID.get(id)
}

/** The selection codec a header's `selection` field names (non-zero), or undefined for an unknown id. */
export function selectionById(id: number): SelectionCodec | undefined {
  return SELECTION_BY_ID.get(id)
}

function split(part: string): { name: string; arg: string | undefined } {
  const colon = part.indexOf(':')
  return colon < 0
    ? { name: part, arg: undefined }
    : { name: part.slice(0, colon), arg: part.slice(colon + 1) }
}

/**
 * An encoder for a spec `[selection:fraction+]value[:arg]` (`raw-f32`, `int8:stochastic`,
 * `int4:ef`, `topk:0.1`, `partial:0.1+int8`; module comment); throws InvalidCodecSpecError. Each call
 * returns a fresh encoder: a selection's reference belongs to the one that pushes with it.
 */
export function parseCodecSpec(spec: string, options: CodecOptions = {}): ModelEncoder {
  const parts = spec.split('+')
  if (parts.length > 2) throw new InvalidCodecSpecError(`codec '${spec}' composes more than two codecs`)
  const last = split(parts[parts.length - 1]!)
  let selectionPart = parts.length === 2 ? split(parts[0]!) : undefined
  let valuePart: { name: string; arg: string | undefined } = last
  if (parts.length === 1 && SELECTION_BY_NAME.has(last.name)) {
    selectionPart = last
    valuePart = { name: RAW_F32.name, arg: undefined }
  }
  const codec = BY_NAME.get(valuePart.name)
  if (codec === undefined) {
    throw new InvalidCodecSpecError(
      `unknown codec '${spec}' (values: ${CODEC_NAMES.join(', ')}; selections: ${SELECTION_NAMES.map((n) => `${n}:F`).join(', ')}, alone or before a '+')`,
    )
  }
  const values = codec.createEncoder(valuePart.arg, options)
  // One residual store per model encoder, like a selection's reference.
  const feedback = values.errorFeedback === true ? new ErrorFeedback() : undefined
  if (selectionPart === undefined) {
    return {
      spec: values.spec,
      codec,
      encodePayload: (tensors) => ({
        tensors: [],
        chunks:
          feedback === undefined ? values.encode(tensors) : encodeWithFeedback(values, feedback, tensors),
      }),
    }
  }
  const selection = SELECTION_BY_NAME.get(selectionPart.name)
  if (selection === undefined) {
    throw new InvalidCodecSpecError(
      `'${selectionPart.name}' in '${spec}' is not a selection (${SELECTION_NAMES.join(', ')})`,
    )
  }
  const selector = selection.createSelector(selectionPart.arg, options)
  return {
    spec: codec === RAW_F32 ? selector.spec : `${selector.spec}+${values.spec}`,
    codec,
    selection,
    encodePayload: (tensors) => encodeSparse(selector, values, tensors, feedback),
  }
}

/** Payload bytes a validated header implies: dense in its codec, or a sparse frame's index section and blocks. */
export function framePayloadBytes(
  layout: readonly TensorLayout[],
  codec: ValueCodec,
  carried: readonly CarriedTensor[] | undefined,
): number {
  return carried === undefined ? codec.payloadBytes(layout) : sparsePayloadBytes(layout, carried, codec)
}

/** The payload decoder of a validated header (allocates its output). */
export function createPayloadDecoder(
  layout: readonly TensorLayout[],
  codec: ValueCodec,
  carried: readonly CarriedTensor[] | undefined,
): PayloadDecoder {
  return carried === undefined
    ? codec.createDecoder(layout)
    : new SparsePayloadDecoder(layout, carried, codec)
}

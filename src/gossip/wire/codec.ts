/**
 * Model frame codec for /gossip-learn/model/1.0.0 and 2.0.0 (the same framing; 2.0.0 carries delta frames):
 *
 *   varint(header length) | ModelHeader (protobuf) | payload
 *
 * The payload is the tensors' values in the value codec the header names
 * (codecs/: raw-f32 by default, f16, int8, int4), all of them or, in a sparse frame,
 * those its selection codec (topk, partial) lists. Its size follows from the
 * header's shapes, codec and selection, so a receiver knows (and bounds) it
 * before allocating anything. Every field is validated; each failure is a typed error from
 * ../errors.ts carrying a reject/ignore verdict.
 */

import type { MaskedState } from '../../merge/masks.ts'
import { InvalidStateError } from '../../model/errors.ts'
import type { ModelState, NamedTensor } from '../../model/types.ts'
import {
  DELTA,
  DELTA_WIRE_VERSION,
  FRAME_SLACK_BYTES,
  HARD_MAX_FRAME_BYTES,
  MAX_HEADER_BYTES,
  MAX_NAME_LENGTH,
  WIRE_VERSION,
} from '../constants.ts'
import {
  ArchMismatchError,
  FrameTooLargeError,
  MalformedFrameError,
  PayloadLengthError,
  ProtocolVersionError,
  ShapeMismatchError,
  SparseCountError,
  TaskMismatchError,
  TruncatedFrameError,
  UnsupportedCodecError,
} from '../errors.ts'
import { type Coordinate, isValidCoordinate } from '../topology/coordinate.ts'
import {
  type CarriedTensor,
  codecById,
  createPayloadDecoder,
  DEFAULT_CODEC,
  type DecodedPayload,
  framePayloadBytes,
  type ModelEncoder,
  type PayloadDecoder,
  parseCodecSpec,
  type SelectionCodec,
  type SentValues,
  selectionById,
  type ValueCodec,
} from './codecs/index.ts'
import { F32_BYTES } from './codecs/raw-f32.ts'
import { HOST_IS_LITTLE_ENDIAN, valueCount } from './codecs/util.ts'
import { readModelHeader } from './header-reader.ts'
import { ModelHeader } from './model.ts'

export { HOST_IS_LITTLE_ENDIAN, ModelHeader }

/** The default encoder (raw-f32): stateless, so one serves every call. */
const DEFAULT_ENCODER = parseCodecSpec(DEFAULT_CODEC)

/** Name and shape of one tensor, as a layout expects it. */
export interface TensorLayout {
  name: string
  shape: readonly number[]
}

/** A Vivaldi coordinate, as carried in headers and announcements (the project's one Coordinate type). */
export type WireCoordinate = Coordinate

/** What a sender says about itself beside the model (both optional). */
export interface SenderMeta {
  coordinate?: WireCoordinate
  /** Sender's latest evaluation accuracy in [0, 1]. */
  accuracy?: number
  /** The sender has merged no received model for several rounds and asks for one back (learner.ts, `reply`). */
  wantsModel?: boolean
}

/** Header fields that are not in the ModelState. */
export interface EncodeMeta extends SenderMeta {
  task: string
  /** Encoder of a codec spec (from parseCodecSpec); default raw-f32. */
  codec?: ModelEncoder
  /**
   * A delta frame: the values are differences against reference number `base` of the exchange
   * with the receiver (0: the zero reference, a new exchange); see delta.ts.
   */
  base?: number
  /** Only tests change this, to produce stale frames. */
  version?: number
}

/** Everything a received header said, validated. */
export interface ModelMeta extends SenderMeta {
  version: number
  task: string
  arch: string
  age: number
  /** Name of the codec the payload came in: the value codec's, after the selection's when sparse (`partial+int8`), after `delta+` in a delta frame. */
  codec: string
  /** Delta frames: the reference the values are relative to (delta.ts). */
  base?: number
}

/** What a receiver accepts; anything else is refused with a typed error. */
export interface DecodeExpectations {
  task: string
  /** Arch fingerprint to require; any arch when absent. */
  arch?: string
  /** Tensor names and shapes to require, in order; any well-formed list when absent. */
  layout?: readonly TensorLayout[]
  /**
   * Largest whole frame (prefix + header + payload); default from the layout, else
   * HARD_MAX_FRAME_BYTES. It also bounds the float32 values a payload decodes to.
   */
  maxFrameBytes?: number
  /** Largest header; default MAX_HEADER_BYTES. */
  maxHeaderBytes?: number
}

/** An encoded model: send `prefix`, `header`, then `chunks` in order. */
export interface EncodedModel {
  prefix: Uint8Array
  header: Uint8Array
  /** raw-f32: views of the tensors' values on little-endian hosts; do not mutate the state while sending. */
  chunks: Uint8Array[]
  payloadBytes: number
  frameBytes: number
  /** What receivers will decode, when the encoder computed it (sparse frames); delta.ts reads it. */
  sent?: SentValues
}

/** A validated header: what the payload must be. */
export interface DecodedHeader {
  meta: ModelMeta
  tensors: TensorLayout[]
  /** The value codec the payload is in. */
  codec: ValueCodec
  /** The selection codec of a sparse frame; undefined when every value is carried. */
  selection?: SelectionCodec
  /** Sparse frames: what each tensor carries, validated against its shape. */
  carried?: CarriedTensor[]
  payloadBytes: number
}

/** A decoded, validated model; a sparse frame's state has a mask per tensor (1 = carried). */
export interface DecodedModel {
  state: MaskedState
  meta: ModelMeta
}

/** Bytes of float32 values a layout holds (its raw-f32 payload; what it takes once decoded). */
export function layoutBytes(layout: readonly TensorLayout[]): number {
  let total = 0
  for (const t of layout) total += valueCount(t.shape) * F32_BYTES
  return total
}

/** Layout (names and shapes) of a model state. */
export function layoutOf(state: ModelState): TensorLayout[] {
  return state.tensors.map((t) => ({ name: t.name, shape: [...t.shape] }))
}

/**
 * The frame limit a receiver should use: the expected layout's size plus room
 * for the header, never above HARD_MAX_FRAME_BYTES.
 */
export function deriveMaxFrameBytes(layout?: readonly TensorLayout[], maxFrameBytes?: number): number {
  const wanted =
    maxFrameBytes ?? (layout != null ? layoutBytes(layout) + FRAME_SLACK_BYTES : HARD_MAX_FRAME_BYTES)
  return Math.min(wanted, HARD_MAX_FRAME_BYTES)
}

/** Canonical unsigned LEB128 varint. */
export function encodeVarint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot varint-encode ${value}`)
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80)
    v = Math.floor(v / 0x80)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** Bytes a canonical varint of `value` takes. */
export function varintLength(value: number): number {
  let n = 1
  let v = value
  while (v >= 0x80) {
    v = Math.floor(v / 0x80)
    n++
  }
  return n
}

/** Encode a model into a frame's parts. Throws InvalidStateError on an inconsistent state. */
export function encodeModel(state: ModelState, meta: EncodeMeta): EncodedModel {
  if (!Number.isFinite(state.age) || state.age < 0) {
    throw new InvalidStateError(`age must be finite and >= 0, got ${state.age}`)
  }
  for (const t of state.tensors) {
    if (t.values.length !== valueCount(t.shape)) {
      throw new InvalidStateError(`tensor ${t.name}: ${t.values.length} values for shape [${t.shape}]`)
    }
  }
  const encoder = meta.codec ?? DEFAULT_ENCODER
  const { tensors: carried, chunks, sent } = encoder.encodePayload(state.tensors)
  let payloadBytes = 0
  for (const c of chunks) payloadBytes += c.byteLength
  if (
    meta.base !== undefined &&
    !(Number.isInteger(meta.base) && meta.base >= 0 && meta.base <= 0xffffffff)
  ) {
    throw new InvalidStateError(`delta base ${meta.base} is not a uint32`)
  }
  const header = ModelHeader.encode({
    version: meta.version ?? (meta.base === undefined ? WIRE_VERSION : DELTA_WIRE_VERSION),
    base: meta.base,
    task: meta.task,
    arch: state.arch,
    age: state.age,
    codec: encoder.codec.id,
    selection: encoder.selection?.id ?? 0,
    tensors: state.tensors.map((t, i) => ({
      name: t.name,
      shape: t.shape,
      count: carried[i]?.count,
      // proto3's 0 means 1 for repeat and stride: leave the common case out of the header.
      slices: (carried[i]?.slices ?? []).map((sl) => ({
        axis: sl.axis,
        repeat: sl.repeat === 1 ? 0 : sl.repeat,
        stride: sl.stride === 1 ? 0 : sl.stride,
        index: sl.index,
      })),
      within: carried[i]?.within,
    })),
    coordinate: meta.coordinate,
    accuracy: meta.accuracy,
    // Left out unless set: a header stays byte for byte what it was before the field existed.
    wantsModel: meta.wantsModel === true ? true : undefined,
  })
  const prefix = encodeVarint(header.byteLength)
  return {
    prefix,
    header,
    chunks,
    payloadBytes,
    frameBytes: prefix.byteLength + header.byteLength + payloadBytes,
    ...(sent === undefined ? {} : { sent }),
  }
}

/** Encode a model as one contiguous frame (tests, files; the exchange streams the parts instead). */
export function encodeFrame(state: ModelState, meta: EncodeMeta): Uint8Array {
  return joinFrame(encodeModel(state, meta))
}

/** An encoded model's parts as one contiguous frame. */
export function joinFrame(enc: EncodedModel): Uint8Array {
  const out = new Uint8Array(enc.frameBytes)
  let off = 0
  for (const part of [enc.prefix, enc.header, ...enc.chunks]) {
    out.set(part, off)
    off += part.byteLength
  }
  return out
}

/**
 * Decode and validate a header (without its length prefix). Everything the
 * payload's size depends on is checked here, before a payload buffer exists.
 */
export function decodeHeader(bytes: Uint8Array, expect: DecodeExpectations): DecodedHeader {
  const maxHeaderBytes = expect.maxHeaderBytes ?? MAX_HEADER_BYTES
  if (bytes.byteLength > maxHeaderBytes) {
    throw new FrameTooLargeError(`header of ${bytes.byteLength} bytes exceeds ${maxHeaderBytes}`)
  }
  const h = readModelHeader(bytes)

  if (h.version !== WIRE_VERSION && h.version !== DELTA_WIRE_VERSION) {
    throw new ProtocolVersionError(
      `wire version ${h.version}, expected ${WIRE_VERSION} or ${DELTA_WIRE_VERSION}`,
    )
  }
  if ((h.version === DELTA_WIRE_VERSION) !== (h.base != null)) {
    throw new MalformedFrameError(
      h.base == null
        ? `a version ${h.version} frame without a base`
        : `a version ${h.version} frame with a base`,
    )
  }
  if (h.task !== expect.task) {
    throw new TaskMismatchError(`task '${clip(h.task)}', expected '${expect.task}'`)
  }
  const codec = codecById(h.codec)
  if (codec === undefined) throw new UnsupportedCodecError(`codec ${h.codec}`)
  const selection = h.selection === 0 ? undefined : selectionById(h.selection)
  if (h.selection !== 0 && selection === undefined)
    throw new UnsupportedCodecError(`selection ${h.selection}`)
  if (expect.arch != null && h.arch !== expect.arch) {
    throw new ArchMismatchError(`arch '${clip(h.arch)}', expected '${expect.arch}'`)
  }
  if (!Number.isFinite(h.age) || h.age < 0) {
    throw new MalformedFrameError(`age ${h.age} is not a finite number >= 0`)
  }
  if (h.accuracy != null && !(h.accuracy >= 0 && h.accuracy <= 1)) {
    throw new MalformedFrameError(`accuracy ${h.accuracy} is not in [0, 1]`)
  }
  if (h.coordinate != null) validateCoordinate(h.coordinate)
  if (h.arch.length > MAX_NAME_LENGTH) throw new MalformedFrameError('arch fingerprint too long')

  const maxFrameBytes = deriveMaxFrameBytes(expect.layout, expect.maxFrameBytes)
  const headerFrameBytes = varintLength(bytes.byteLength) + bytes.byteLength
  // Bounds the decoded float32 values by the frame limit, whatever the codec.
  const tensors = validateTensorList(h.tensors, maxFrameBytes - headerFrameBytes)
  const carried = validateCarried(h.tensors, tensors, selection)
  const payloadBytes = framePayloadBytes(tensors, codec, carried)
  if (headerFrameBytes + payloadBytes > maxFrameBytes) {
    throw new FrameTooLargeError(`frame of ${headerFrameBytes + payloadBytes} bytes exceeds ${maxFrameBytes}`)
  }
  if (expect.layout != null) checkLayout(tensors, expect.layout)

  const values = selection === undefined ? codec.name : `${selection.name}+${codec.name}`
  const name = h.base == null ? values : `${DELTA}+${values}`
  const meta: ModelMeta = { version: h.version, task: h.task, arch: h.arch, age: h.age, codec: name }
  if (h.coordinate != null) meta.coordinate = { ...h.coordinate, vec: [...h.coordinate.vec] }
  if (h.accuracy != null) meta.accuracy = h.accuracy
  if (h.base != null) meta.base = h.base
  if (h.wantsModel === true) meta.wantsModel = true
  const header: DecodedHeader = { meta, tensors, codec, payloadBytes }
  if (selection !== undefined) {
    header.selection = selection
    header.carried = carried
  }
  return header
}

/**
 * What each tensor carries, validated by the frame's selection codec; undefined for a dense
 * frame, whose tensors may declare neither a count (SparseCountError) nor slices.
 */
function validateCarried(
  list: readonly ModelHeader.TensorInfo[],
  tensors: readonly TensorLayout[],
  selection: SelectionCodec | undefined,
): CarriedTensor[] | undefined {
  if (selection !== undefined) return tensors.map((t, i) => selection.carried(t, list[i]!))
  for (const t of list) {
    if (t.count != null) throw new SparseCountError(`dense tensor '${clip(t.name)}' declares a count`)
    if (t.slices.length > 0 || t.within != null) {
      throw new MalformedFrameError(`dense tensor '${clip(t.name)}' lists unit slices or a kept axis`)
    }
  }
  return undefined
}

function validateCoordinate(c: ModelHeader.Coordinate): void {
  if (!isValidCoordinate(c)) throw new MalformedFrameError('coordinate is malformed or out of range')
}

/** Names non-empty and unique, ranks and dims sane, and the values' float32 size below `maxPayloadBytes`. */
function validateTensorList(list: ModelHeader.TensorInfo[], maxPayloadBytes: number): TensorLayout[] {
  if (list.length === 0) throw new MalformedFrameError('header lists no tensors')
  const seen = new Set<string>()
  let elements = 0
  for (const t of list) {
    if (t.name === '' || t.name.length > MAX_NAME_LENGTH) {
      throw new MalformedFrameError(`tensor name '${clip(t.name)}' is empty or too long`)
    }
    if (seen.has(t.name)) throw new MalformedFrameError(`tensor '${clip(t.name)}' listed twice`)
    seen.add(t.name)
    for (const d of t.shape) {
      if (d < 1) throw new MalformedFrameError(`tensor '${clip(t.name)}' has a zero dimension`)
    }
    // Accumulate in floating point: dims are uint32, so a product cannot wrap,
    // and the running total is compared before it can lose precision.
    elements += valueCount(t.shape)
    if (elements * F32_BYTES > maxPayloadBytes) {
      throw new FrameTooLargeError(`tensors declare more than ${maxPayloadBytes} bytes of float32 values`)
    }
  }
  return list.map((t) => ({ name: t.name, shape: t.shape }))
}

function checkLayout(got: readonly TensorLayout[], want: readonly TensorLayout[]): void {
  if (got.length !== want.length) {
    throw new ShapeMismatchError(`${got.length} tensors, expected ${want.length}`)
  }
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!
    const w = want[i]!
    if (g.name !== w.name) {
      throw new ShapeMismatchError(`tensor ${i} is '${clip(g.name)}', expected '${w.name}'`)
    }
    if (g.shape.length !== w.shape.length || g.shape.some((d, j) => d !== w.shape[j])) {
      throw new ShapeMismatchError(`tensor '${w.name}' has shape [${g.shape}], expected [${w.shape}]`)
    }
  }
}

/**
 * Turn a payload into tensors for a validated header: checks the length, then
 * decodes and validates every value with the header's codec. The tensors do
 * not alias `payload`.
 */
export function decodePayload(header: DecodedHeader, payload: Uint8Array): DecodedModel {
  if (payload.byteLength !== header.payloadBytes) {
    throw new PayloadLengthError(
      `payload of ${payload.byteLength} bytes, header implies ${header.payloadBytes}`,
    )
  }
  const decoder = payloadDecoderOf(header)
  decoder.push(payload)
  return modelOf(header, decoder.finish())
}

/** The decoder of a validated header's payload (allocates its output). */
export function payloadDecoderOf(header: DecodedHeader): PayloadDecoder {
  return createPayloadDecoder(header.tensors, header.codec, header.carried)
}

/** The model a validated header and its decoded payload make (with masks for a sparse frame). */
export function modelOf(header: DecodedHeader, payload: DecodedPayload): DecodedModel {
  const tensors: NamedTensor[] = header.tensors.map((t, i) => ({
    name: t.name,
    shape: [...t.shape],
    values: payload.values[i]!,
  }))
  const state: MaskedState = { arch: header.meta.arch, age: header.meta.age, tensors }
  if (payload.masks !== undefined) state.masks = payload.masks
  return { state, meta: header.meta }
}

/** Decode a header (without prefix) and its payload in one call. */
export function decodeModel(
  header: Uint8Array,
  payload: Uint8Array,
  expect: DecodeExpectations,
): DecodedModel {
  return decodePayload(decodeHeader(header, expect), payload)
}

/** Decode one contiguous frame; a frame cut short anywhere is a TruncatedFrameError. */
export function decodeFrame(frame: Uint8Array, expect: DecodeExpectations): DecodedModel {
  const { value: headerLength, bytesRead } = readVarint(frame, 0, expect.maxHeaderBytes ?? MAX_HEADER_BYTES)
  if (frame.byteLength < bytesRead + headerLength) {
    throw new TruncatedFrameError(`frame ends inside its ${headerLength}-byte header`)
  }
  const header = decodeHeader(frame.subarray(bytesRead, bytesRead + headerLength), expect)
  const payload = frame.subarray(bytesRead + headerLength)
  if (payload.byteLength < header.payloadBytes) {
    throw new TruncatedFrameError(
      `frame ends after ${payload.byteLength}/${header.payloadBytes} payload bytes`,
    )
  }
  return decodePayload(header, payload)
}

/** Most bytes a header-length varint may take, padded (non-canonical) encodings included. */
export function maxLengthPrefixBytes(maxHeaderBytes: number): number {
  return varintLength(maxHeaderBytes)
}

/**
 * Read the header-length varint at `offset`. Non-canonical (zero-padded)
 * encodings are read correctly as long as they fit in the bytes the largest
 * allowed length needs; longer ones are malformed.
 */
export function readVarint(
  bytes: Uint8Array,
  offset: number,
  maxValue: number,
): { value: number; bytesRead: number } {
  const maxBytes = maxLengthPrefixBytes(maxValue)
  let value = 0
  let scale = 1
  for (let i = 0; offset + i < bytes.byteLength; i++) {
    if (i >= maxBytes) throw new MalformedFrameError(`length prefix longer than ${maxBytes} bytes`)
    const b = bytes[offset + i]!
    value += (b & 0x7f) * scale
    scale *= 0x80
    if ((b & 0x80) === 0) {
      if (value > maxValue) throw new FrameTooLargeError(`header of ${value} bytes exceeds ${maxValue}`)
      return { value, bytesRead: i + 1 }
    }
  }
  throw new TruncatedFrameError('frame ends inside its length prefix')
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s
}

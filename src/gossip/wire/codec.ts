/**
 * Model frame codec for /gossip-learn/model/1.0.0:
 *
 *   varint(header length) | ModelHeader (protobuf) | payload
 *
 * The payload is the tensors' float32 values, little-endian, concatenated in
 * header order. Its size follows from the header's shapes, so a receiver knows
 * (and bounds) it before allocating anything. Every field is validated; each
 * failure is a typed error from ../errors.ts carrying a reject/ignore verdict.
 */
import { InvalidStateError } from '../../model/errors.ts'
import type { ModelState, NamedTensor } from '../../model/types.ts'
import {
  FRAME_SLACK_BYTES,
  HARD_MAX_FRAME_BYTES,
  MAX_COORDINATE_DIMS,
  MAX_HEADER_BYTES,
  MAX_NAME_LENGTH,
  MAX_RANK,
  MAX_TENSORS,
  WIRE_VERSION,
} from '../constants.ts'
import {
  ArchMismatchError,
  FrameTooLargeError,
  MalformedFrameError,
  NonFiniteValueError,
  PayloadLengthError,
  ProtocolVersionError,
  ShapeMismatchError,
  TaskMismatchError,
  TruncatedFrameError,
  UnsupportedCodecError,
} from '../errors.ts'
import { ModelHeader } from './model.ts'

export { ModelHeader }

/** Bytes per float32 value on the wire. */
const F32 = 4

/** True when typed arrays are little-endian, so payload bytes can be viewed without a byte swap. */
export const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Name and shape of one tensor, as a layout expects it. */
export interface TensorLayout {
  name: string
  shape: readonly number[]
}

/** A Vivaldi coordinate, as carried in headers and announcements. */
export interface WireCoordinate {
  vec: number[]
  height: number
  error: number
}

/** What a sender says about itself beside the model (both optional). */
export interface SenderMeta {
  coordinate?: WireCoordinate
  /** Sender's latest evaluation accuracy in [0, 1]. */
  accuracy?: number
}

/** Header fields that are not in the ModelState. */
export interface EncodeMeta extends SenderMeta {
  task: string
  /** Only tests change this, to produce stale frames. */
  version?: number
}

/** Everything a received header said, validated. */
export interface ModelMeta extends SenderMeta {
  version: number
  task: string
  arch: string
  age: number
}

/** What a receiver accepts; anything else is refused with a typed error. */
export interface DecodeExpectations {
  task: string
  /** Arch fingerprint to require; any arch when absent. */
  arch?: string
  /** Tensor names and shapes to require, in order; any well-formed list when absent. */
  layout?: readonly TensorLayout[]
  /** Largest whole frame (prefix + header + payload); default from the layout, else HARD_MAX_FRAME_BYTES. */
  maxFrameBytes?: number
  /** Largest header; default MAX_HEADER_BYTES. */
  maxHeaderBytes?: number
}

/** An encoded model: send `prefix`, `header`, then `chunks` in order. */
export interface EncodedModel {
  prefix: Uint8Array
  header: Uint8Array
  /** Views of the tensors' values on little-endian hosts: do not mutate the state while sending. */
  chunks: Uint8Array[]
  payloadBytes: number
  frameBytes: number
}

/** A validated header: what the payload must be. */
export interface DecodedHeader {
  meta: ModelMeta
  tensors: TensorLayout[]
  payloadBytes: number
}

/** A decoded, validated model. */
export interface DecodedModel {
  state: ModelState
  meta: ModelMeta
}

/** Bytes of float32 values a layout holds. */
export function layoutBytes(layout: readonly TensorLayout[]): number {
  let total = 0
  for (const t of layout) total += elementCount(t.shape) * F32
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

function elementCount(shape: readonly number[]): number {
  let n = 1
  for (const d of shape) n *= d
  return n
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
  const chunks: Uint8Array[] = []
  let payloadBytes = 0
  for (const t of state.tensors) {
    if (t.values.length !== elementCount(t.shape)) {
      throw new InvalidStateError(`tensor ${t.name}: ${t.values.length} values for shape [${t.shape}]`)
    }
    chunks.push(f32ToLittleEndianBytes(t.values))
    payloadBytes += t.values.byteLength
  }
  const header = ModelHeader.encode({
    version: meta.version ?? WIRE_VERSION,
    task: meta.task,
    arch: state.arch,
    age: state.age,
    codec: ModelHeader.ValueCodec.RAW_F32,
    tensors: state.tensors.map((t) => ({ name: t.name, shape: t.shape })),
    coordinate: meta.coordinate,
    accuracy: meta.accuracy,
  })
  const prefix = encodeVarint(header.byteLength)
  return {
    prefix,
    header,
    chunks,
    payloadBytes,
    frameBytes: prefix.byteLength + header.byteLength + payloadBytes,
  }
}

/** Encode a model as one contiguous frame (tests, files; the exchange streams the parts instead). */
export function encodeFrame(state: ModelState, meta: EncodeMeta): Uint8Array {
  const enc = encodeModel(state, meta)
  const out = new Uint8Array(enc.frameBytes)
  let off = 0
  for (const part of [enc.prefix, enc.header, ...enc.chunks]) {
    out.set(part, off)
    off += part.byteLength
  }
  return out
}

function f32ToLittleEndianBytes(values: Float32Array): Uint8Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
  const out = new Uint8Array(values.byteLength)
  const view = new DataView(out.buffer)
  for (let i = 0; i < values.length; i++) view.setFloat32(i * F32, values[i]!, true)
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
  let h: ModelHeader
  try {
    h = ModelHeader.decode(bytes, {
      limits: {
        tensors: MAX_TENSORS,
        tensors$: { shape: MAX_RANK },
        coordinate: { vec: MAX_COORDINATE_DIMS },
      },
    })
  } catch (err) {
    throw new MalformedFrameError(`undecodable header: ${(err as Error)?.message}`)
  }

  if (h.version !== WIRE_VERSION) {
    throw new ProtocolVersionError(`wire version ${h.version}, expected ${WIRE_VERSION}`)
  }
  if (h.task !== expect.task) {
    throw new TaskMismatchError(`task '${clip(h.task)}', expected '${expect.task}'`)
  }
  if (h.codec !== ModelHeader.ValueCodec.RAW_F32) {
    throw new UnsupportedCodecError(`codec ${h.codec}`)
  }
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
  const tensors = validateTensorList(h.tensors, maxFrameBytes - headerFrameBytes)
  let payloadBytes = 0
  for (const t of tensors) payloadBytes += elementCount(t.shape) * F32
  if (headerFrameBytes + payloadBytes > maxFrameBytes) {
    throw new FrameTooLargeError(`frame of ${headerFrameBytes + payloadBytes} bytes exceeds ${maxFrameBytes}`)
  }
  if (expect.layout != null) checkLayout(tensors, expect.layout)

  const meta: ModelMeta = { version: h.version, task: h.task, arch: h.arch, age: h.age }
  if (h.coordinate != null) meta.coordinate = { ...h.coordinate, vec: [...h.coordinate.vec] }
  if (h.accuracy != null) meta.accuracy = h.accuracy
  return { meta, tensors, payloadBytes }
}

function validateCoordinate(c: ModelHeader.Coordinate): void {
  const finite = c.vec.every(Number.isFinite) && Number.isFinite(c.height) && Number.isFinite(c.error)
  if (!finite || c.height < 0 || c.error < 0) {
    throw new MalformedFrameError('coordinate has non-finite or negative components')
  }
}

/** Names non-empty and unique, ranks and dims sane, and the total size below `maxPayloadBytes`. */
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
    elements += elementCount(t.shape)
    if (elements * F32 > maxPayloadBytes) {
      throw new FrameTooLargeError(`tensors declare more than ${maxPayloadBytes} payload bytes`)
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
 * Turn a payload into tensors for a validated header. Checks the length and
 * that every value is finite. On little-endian hosts with a 4-byte aligned
 * payload the tensors are views of `payload` (no copy): hand over a buffer you
 * will not reuse.
 */
export function decodePayload(header: DecodedHeader, payload: Uint8Array): DecodedModel {
  if (payload.byteLength !== header.payloadBytes) {
    throw new PayloadLengthError(
      `payload of ${payload.byteLength} bytes, header implies ${header.payloadBytes}`,
    )
  }
  const aligned = HOST_IS_LITTLE_ENDIAN && payload.byteOffset % F32 === 0 ? payload : payload.slice()
  assertFinite(aligned, 0, aligned.byteLength)
  return viewModel(header, aligned)
}

/**
 * Tensors as views of an aligned payload whose length and values were already
 * checked (FrameDecoder checks values as they arrive, while they are in cache).
 */
export function viewModel(header: DecodedHeader, payload: Uint8Array): DecodedModel {
  const tensors: NamedTensor[] = []
  let off = 0
  for (const t of header.tensors) {
    const n = elementCount(t.shape)
    tensors.push({ name: t.name, shape: [...t.shape], values: littleEndianBytesToF32(payload, off, n) })
    off += n * F32
  }
  return { state: { arch: header.meta.arch, age: header.meta.age, tensors }, meta: header.meta }
}

function littleEndianBytesToF32(bytes: Uint8Array, offset: number, length: number): Float32Array {
  if (HOST_IS_LITTLE_ENDIAN) return new Float32Array(bytes.buffer, bytes.byteOffset + offset, length)
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, length * F32)
  const out = new Float32Array(length)
  for (let i = 0; i < length; i++) out[i] = view.getFloat32(i * F32, true)
  return out
}

/**
 * Throw NonFiniteValueError if a float32 in bytes [start, end) of a 4-byte
 * aligned buffer is NaN or +-Inf: exactly the patterns whose exponent bits are
 * all ones. `start` and `end` are multiples of 4.
 */
export function assertFinite(bytes: Uint8Array, start: number, end: number): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset + start, (end - start) / F32)
  // The payload is little-endian; pick the mask that finds the exponent in a host word.
  const mask = HOST_IS_LITTLE_ENDIAN ? 0x7f800000 : 0x0000807f
  for (let i = 0; i < words.length; i++) {
    if ((words[i]! & mask) === mask) {
      throw new NonFiniteValueError(`value ${start / F32 + i} of the payload is NaN or infinite`)
    }
  }
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

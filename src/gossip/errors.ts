/**
 * Typed errors of the gossip layer: callers switch on `name`, never on messages.
 *
 * Like Lodestar's gossip validation, every inbound failure carries a verdict:
 * 'reject' when the input is malformed or lies (the sender misbehaves and may be
 * penalised), 'ignore' when it is well-formed but not for us (another task,
 * version or architecture) or the failure may be the network's fault.
 */
import { ArchMismatchError } from '../model/errors.ts'

export { ArchMismatchError }

/** What to do about the peer that sent an input that failed validation. */
export type Verdict = 'reject' | 'ignore'

/** Base of the inbound-validation errors; `verdict` says how to treat the sender. */
export abstract class GossipValidationError extends Error {
  abstract readonly verdict: Verdict
}

/** The frame declares a header or payload larger than our limit (checked before allocating). */
export class FrameTooLargeError extends GossipValidationError {
  static readonly name = 'FrameTooLargeError'
  override readonly name = 'FrameTooLargeError'
  readonly verdict = 'reject'
}

/** The stream ended (or was reset) before the length prefix, header or payload were complete. */
export class TruncatedFrameError extends GossipValidationError {
  static readonly name = 'TruncatedFrameError'
  override readonly name = 'TruncatedFrameError'
  readonly verdict = 'reject'
}

/** More (or fewer) payload bytes than the header's tensor shapes imply. */
export class PayloadLengthError extends GossipValidationError {
  static readonly name = 'PayloadLengthError'
  override readonly name = 'PayloadLengthError'
  readonly verdict = 'reject'
}

/** Undecodable bytes: bad length prefix, invalid protobuf, a varint too wide for its field, or fields out of range. */
export class MalformedFrameError extends GossipValidationError {
  static readonly name = 'MalformedFrameError'
  override readonly name = 'MalformedFrameError'
  readonly verdict = 'reject'
}

/** The header's wire version is not ours. */
export class ProtocolVersionError extends GossipValidationError {
  static readonly name = 'ProtocolVersionError'
  override readonly name = 'ProtocolVersionError'
  readonly verdict = 'ignore'
}

/** The model belongs to another learning task. */
export class TaskMismatchError extends GossipValidationError {
  static readonly name = 'TaskMismatchError'
  override readonly name = 'TaskMismatchError'
  readonly verdict = 'ignore'
}

/** The header names a value codec this node does not implement (or none). */
export class UnsupportedCodecError extends GossipValidationError {
  static readonly name = 'UnsupportedCodecError'
  override readonly name = 'UnsupportedCodecError'
  readonly verdict = 'ignore'
}

/**
 * A delta frame names a reference this node does not hold for its sender (we restarted or
 * evicted it, or a push failed half-way): not the sender's fault, and its next frame starts over.
 */
export class DeltaBaseError extends GossipValidationError {
  static readonly name = 'DeltaBaseError'
  override readonly name = 'DeltaBaseError'
  readonly verdict = 'ignore'
}

/** Tensor count, names or shapes differ from the expected layout (the arch fingerprint said otherwise). */
export class ShapeMismatchError extends GossipValidationError {
  static readonly name = 'ShapeMismatchError'
  override readonly name = 'ShapeMismatchError'
  readonly verdict = 'reject'
}

/** A value is NaN or +-Infinity: merging it would poison the local model. */
export class NonFiniteValueError extends GossipValidationError {
  static readonly name = 'NonFiniteValueError'
  override readonly name = 'NonFiniteValueError'
  readonly verdict = 'reject'
}

/** A quantisation scale (int8) is NaN, infinite or negative. */
export class InvalidScaleError extends GossipValidationError {
  static readonly name = 'InvalidScaleError'
  override readonly name = 'InvalidScaleError'
  readonly verdict = 'reject'
}

/** A packed value lies outside its codec's range (an int2 byte above 242). */
export class ValueRangeError extends GossipValidationError {
  static readonly name = 'ValueRangeError'
  override readonly name = 'ValueRangeError'
  readonly verdict = 'reject'
}

/** A sparse frame's coordinate index is not below its tensor's size. */
export class SparseIndexRangeError extends GossipValidationError {
  static readonly name = 'SparseIndexRangeError'
  override readonly name = 'SparseIndexRangeError'
  readonly verdict = 'reject'
}

/** A sparse frame lists indices (coordinates or units) out of increasing order. */
export class UnsortedIndexError extends GossipValidationError {
  static readonly name = 'UnsortedIndexError'
  override readonly name = 'UnsortedIndexError'
  readonly verdict = 'reject'
}

/** A sparse frame lists the same index (coordinate or unit) twice. */
export class DuplicateIndexError extends GossipValidationError {
  static readonly name = 'DuplicateIndexError'
  override readonly name = 'DuplicateIndexError'
  readonly verdict = 'reject'
}

/** A partial frame names a unit its tensor's axis does not have. */
export class UnknownUnitError extends GossipValidationError {
  static readonly name = 'UnknownUnitError'
  override readonly name = 'UnknownUnitError'
  readonly verdict = 'reject'
}

/** A sparse frame's declared count does not fit its tensor (more values than it has, or a count where none belongs). */
export class SparseCountError extends GossipValidationError {
  static readonly name = 'SparseCountError'
  override readonly name = 'SparseCountError'
  readonly verdict = 'reject'
}

/** A transfer stalled past its idle timeout or overran its total deadline. */
export class StreamTimeoutError extends GossipValidationError {
  static readonly name = 'StreamTimeoutError'
  override readonly name = 'StreamTimeoutError'
  readonly verdict = 'ignore'
}

/** Too many inbound transfers at once; the stream was refused to bound memory. */
export class TransferLimitError extends GossipValidationError {
  static readonly name = 'TransferLimitError'
  override readonly name = 'TransferLimitError'
  readonly verdict = 'ignore'
}

/** The sending peer already has as many inbound transfers in progress as one peer may have. */
export class PeerTransferLimitError extends GossipValidationError {
  static readonly name = 'PeerTransferLimitError'
  override readonly name = 'PeerTransferLimitError'
  readonly verdict = 'ignore'
}

/** The sending peer is over its fair share of models: the stream was refused before any byte was read. */
export class FairShareError extends GossipValidationError {
  static readonly name = 'FairShareError'
  override readonly name = 'FairShareError'
  readonly verdict = 'ignore'
}

/** A membership announcement (peer descriptor) failed validation. */
export class InvalidDescriptorError extends GossipValidationError {
  static readonly name = 'InvalidDescriptorError'
  override readonly name = 'InvalidDescriptorError'
  readonly verdict = 'reject'
}

/** A codec spec (`--codec`) names no known codec or gives one an argument it does not take. */
export class InvalidCodecSpecError extends Error {
  static readonly name = 'InvalidCodecSpecError'
  override readonly name = 'InvalidCodecSpecError'
}

/**
 * The peer is reachable only through a relay (a limited connection): models wait for a direct
 * connection (DCUtR's hole punch, or a later direct dial). Not the peer's fault: no penalty.
 */
export class RelayedOnlyError extends Error {
  static readonly name = 'RelayedOnlyError'
  override readonly name = 'RelayedOnlyError'
}

/**
 * A delta push ended without the receiver's acknowledgement (it refused the frame, or closed or
 * reset the stream first): whether it applied the difference is unknown, so the sender starts
 * over from the zero reference. Not necessarily the peer's fault.
 */
export class DeltaNotAppliedError extends Error {
  static readonly name = 'DeltaNotAppliedError'
  override readonly name = 'DeltaNotAppliedError'
}

/** The exchange is not started (push before start(), or after stop()). */
export class NotStartedError extends Error {
  static readonly name = 'NotStartedError'
  override readonly name = 'NotStartedError'
}

/**
 * The verdict for any error met while validating inbound data. Errors that are
 * not ours (stream resets, aborts) are 'ignore': they say nothing about the sender.
 */
export function verdictOf(err: unknown): Verdict {
  if (err instanceof GossipValidationError) return err.verdict
  // ArchMismatchError (another architecture: a configuration difference, not
  // misbehaviour) and errors from the stream layer land here.
  return 'ignore'
}

/**
 * libp2p stream APIs sometimes reject with the `close` Event rather than an
 * Error; turn anything thrown into an Error so it can be logged and classified.
 */
export function toError(err: unknown): Error {
  if (err instanceof Error) return err
  if (typeof Event !== 'undefined' && err instanceof Event) {
    const inner = (err as Event & { error?: unknown }).error
    if (inner instanceof Error) return inner
    return new Error(`stream ${err.type} event`)
  }
  return new Error(String(err))
}

/**
 * Incremental decoder of one model frame, fed chunk by chunk as a stream
 * delivers them. Memory is bounded at every step: at most the length prefix,
 * then a header buffer of the declared (capped) size, then the header's value
 * codec decoding exactly the payload size the validated header implies, and
 * validating values as they arrive. Nothing is allocated for a payload before
 * its header passed validation.
 */
import type { Uint8ArrayList } from 'uint8arraylist'
import { MAX_HEADER_BYTES } from '../constants.ts'
import { MalformedFrameError, PayloadLengthError, TruncatedFrameError } from '../errors.ts'
import {
  type DecodedHeader,
  type DecodedModel,
  type DecodeExpectations,
  decodeHeader,
  modelOf,
  payloadDecoderOf,
  readVarint,
} from './codec.ts'
import type { PayloadDecoder } from './codecs/index.ts'

type Phase = 'prefix' | 'header' | 'payload' | 'done'

export class FrameDecoder {
  private phase: Phase = 'prefix'
  private readonly expect: DecodeExpectations
  private readonly maxHeaderBytes: number
  /** Length-prefix bytes seen so far (at most a few). */
  private prefix = new Uint8Array(0)
  /** The header, while it arrives. */
  private buffer: Uint8Array = new Uint8Array(0)
  private filled = 0
  private decodedHeader?: DecodedHeader
  private payload?: PayloadDecoder
  /** Payload bytes still to come. */
  private payloadLeft = 0
  /** Bytes consumed so far, prefix included. */
  bytesReceived = 0

  constructor(expect: DecodeExpectations) {
    this.expect = expect
    this.maxHeaderBytes = expect.maxHeaderBytes ?? MAX_HEADER_BYTES
  }

  /** The validated header once it has been read (its payload may still be arriving). */
  get header(): DecodedHeader | undefined {
    return this.decodedHeader
  }

  /** True once the whole payload has arrived. */
  get done(): boolean {
    return this.phase === 'done'
  }

  /** Feed the next bytes. Throws a typed error as soon as the input is known to be bad. */
  push(data: Uint8Array | Uint8ArrayList): void {
    if (data instanceof Uint8Array) {
      this.pushBytes(data)
    } else {
      for (const buf of data) this.pushBytes(buf)
    }
  }

  /** The input ended: throws TruncatedFrameError unless a whole frame was read. */
  end(): void {
    if (this.phase !== 'done') {
      const where =
        this.phase === 'payload'
          ? `after ${this.decodedHeader!.payloadBytes - this.payloadLeft}/${this.decodedHeader!.payloadBytes} payload bytes`
          : `in its ${this.phase}`
      throw new TruncatedFrameError(`stream ended ${where}`)
    }
  }

  /** The model, its values checked as they arrived (raw-f32: views of one payload buffer). Call once `done`. */
  result(): DecodedModel {
    if (this.phase !== 'done' || this.decodedHeader == null || this.payload == null)
      throw new TruncatedFrameError('frame is incomplete')
    return modelOf(this.decodedHeader, this.payload.finish())
  }

  private pushBytes(chunk: Uint8Array): void {
    let off = 0
    this.bytesReceived += chunk.byteLength
    while (off < chunk.byteLength) {
      switch (this.phase) {
        case 'prefix':
          off = this.readPrefix(chunk, off)
          break
        case 'header':
          off = this.fillHeader(chunk, off)
          break
        case 'payload':
          off = this.feedPayload(chunk, off)
          break
        case 'done':
          throw new PayloadLengthError(`${chunk.byteLength - off} bytes after the end of the payload`)
      }
    }
  }

  private readPrefix(chunk: Uint8Array, off: number): number {
    // Take one byte at a time: the prefix is a few bytes and must not swallow the header.
    const next = new Uint8Array(this.prefix.byteLength + 1)
    next.set(this.prefix)
    next[this.prefix.byteLength] = chunk[off]!
    this.prefix = next
    let parsed: { value: number; bytesRead: number }
    try {
      parsed = readVarint(this.prefix, 0, this.maxHeaderBytes)
    } catch (err) {
      if (err instanceof TruncatedFrameError) return off + 1
      throw err
    }
    if (parsed.value === 0) throw new MalformedFrameError('empty header')
    this.buffer = new Uint8Array(parsed.value)
    this.filled = 0
    this.phase = 'header'
    return off + 1
  }

  private fillHeader(chunk: Uint8Array, off: number): number {
    const n = Math.min(this.buffer.byteLength - this.filled, chunk.byteLength - off)
    this.buffer.set(chunk.subarray(off, off + n), this.filled)
    this.filled += n
    if (this.filled === this.buffer.byteLength) {
      const header = decodeHeader(this.buffer, this.expect)
      // Size checked against the limit inside decodeHeader: only now allocate.
      this.decodedHeader = header
      this.payload = payloadDecoderOf(header)
      this.payloadLeft = header.payloadBytes
      this.buffer = new Uint8Array(0)
      this.phase = this.payloadLeft === 0 ? 'done' : 'payload'
    }
    return off + n
  }

  private feedPayload(chunk: Uint8Array, off: number): number {
    const n = Math.min(this.payloadLeft, chunk.byteLength - off)
    // The codec checks values as they land, while they are still in cache.
    this.payload!.push(chunk.subarray(off, off + n))
    this.payloadLeft -= n
    if (this.payloadLeft === 0) this.phase = 'done'
    return off + n
  }
}

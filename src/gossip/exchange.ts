/**
 * Model exchange over direct libp2p streams (/gossip-learn/model/1.0.0).
 *
 * One stream carries one model: the sender writes a length-prefixed header and
 * the raw payload, then closes its write end. The receiver validates as bytes
 * arrive (sizes before allocating, then every value), with its own idle timer
 * and total deadline, and a cap on concurrent transfers. Any failure is a typed
 * error: counted by name, logged, the stream reset, the callback not called.
 */
import type { ComponentLogger, Connection, Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { ModelState } from '../model/types.ts'
import {
  CLOSE_TIMEOUT_MS,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_INBOUND,
  DEFAULT_TOTAL_TIMEOUT_MS,
  MAX_HEADER_BYTES,
  MAX_STREAMS_PER_CONNECTION,
  MODEL_PROTOCOL,
} from './constants.ts'
import {
  NotStartedError,
  StreamTimeoutError,
  TransferLimitError,
  TruncatedFrameError,
  toError,
  type Verdict,
  verdictOf,
} from './errors.ts'
import {
  type DecodedModel,
  type DecodeExpectations,
  deriveMaxFrameBytes,
  encodeModel,
  type ModelMeta,
  type SenderMeta,
  type TensorLayout,
} from './wire/codec.ts'
import { FrameDecoder } from './wire/frame-decoder.ts'

export type { ModelMeta, SenderMeta, TensorLayout }
export { MODEL_PROTOCOL }

/** What the exchange needs from its host. */
export interface ModelExchangeComponents {
  node: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'>
  logger: ComponentLogger
}

/** Called with every model that passed validation; `from` is the sender's peer id. */
export type OnModel = (state: ModelState, meta: ModelMeta, from: string) => void | Promise<void>

/** Called when an inbound transfer fails, so membership can penalise 'reject' senders. */
export type OnRejected = (from: string, err: Error, verdict: Verdict) => void

export interface ModelExchangeInit {
  /** Task id: models of other tasks are ignored. */
  task: string
  /** Arch fingerprint to require of inbound models; any when absent. */
  arch?: string
  /** Tensor names/shapes to require, in order; also sizes the default maxFrameBytes. */
  expectedLayout?: readonly TensorLayout[]
  /** Largest inbound frame; default the layout's size + header room, capped at 64 MiB. */
  maxFrameBytes?: number
  /** Largest inbound header; default 64 KiB. */
  maxHeaderBytes?: number
  /** Drop an inbound transfer that receives nothing for this long (default 10 s). */
  idleTimeoutMs?: number
  /** Deadline for a whole transfer, inbound and outbound (default 60 s). */
  totalTimeoutMs?: number
  /** Inbound transfers at once; further streams are reset (default 4). */
  maxConcurrentInbound?: number
  /** Payload slice per stream.send() (default 256 KiB). */
  chunkBytes?: number
  onModel?: OnModel
  onRejected?: OnRejected
  /** Coordinate/accuracy to put in each pushed header, unless push() is given them. */
  describe?: () => SenderMeta
}

export interface PushOptions extends SenderMeta {
  signal?: AbortSignal
}

/** Running totals since construction. */
export interface ExchangeCounters {
  /** Pushes that completed (all bytes handed to the transport and the stream closed). */
  modelsSent: number
  /** Inbound models that passed validation and were handed to onModel. */
  modelsReceived: number
  /** Bytes written by pushes, failed ones included. */
  bytesSent: number
  /** Bytes read from inbound model streams, rejected ones included. */
  bytesReceived: number
  /** Pushes that failed (dial, reset by the receiver, timeout, abort). */
  pushFailures: number
  /** Inbound transfers refused, by error name. */
  rejected: Record<string, number>
}

/** Sends and receives models over direct streams; see the module comment for the protocol. */
export class ModelExchange {
  private readonly components: ModelExchangeComponents
  private readonly log: Logger
  private readonly task: string
  private readonly expect: DecodeExpectations
  private readonly idleTimeoutMs: number
  private readonly totalTimeoutMs: number
  private readonly maxConcurrentInbound: number
  private readonly chunkBytes: number
  private readonly onModel?: OnModel
  private readonly onRejected?: OnRejected
  private readonly describe?: () => SenderMeta
  private readonly stats: ExchangeCounters = {
    modelsSent: 0,
    modelsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    pushFailures: 0,
    rejected: {},
  }
  private started = false
  private activeInbound = 0
  /** Aborted by stop(): ends in-flight transfers. */
  private shutdown = new AbortController()

  constructor(components: ModelExchangeComponents, init: ModelExchangeInit) {
    this.components = components
    this.log = components.logger.forComponent('gossip-learn:exchange')
    this.task = init.task
    this.expect = {
      task: init.task,
      arch: init.arch,
      layout: init.expectedLayout,
      maxFrameBytes: deriveMaxFrameBytes(init.expectedLayout, init.maxFrameBytes),
      maxHeaderBytes: init.maxHeaderBytes ?? MAX_HEADER_BYTES,
    }
    this.idleTimeoutMs = init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    this.totalTimeoutMs = init.totalTimeoutMs ?? DEFAULT_TOTAL_TIMEOUT_MS
    this.maxConcurrentInbound = init.maxConcurrentInbound ?? DEFAULT_MAX_CONCURRENT_INBOUND
    this.chunkBytes = init.chunkBytes ?? DEFAULT_CHUNK_BYTES
    this.onModel = init.onModel
    this.onRejected = init.onRejected
    this.describe = init.describe
  }

  /** A snapshot of the counters. */
  get counters(): ExchangeCounters {
    return { ...this.stats, rejected: { ...this.stats.rejected } }
  }

  /** Largest inbound frame this exchange accepts. */
  get maxFrameBytes(): number {
    return this.expect.maxFrameBytes!
  }

  isStarted(): boolean {
    return this.started
  }

  /** Register the protocol handler. Safe to call twice. */
  async start(): Promise<void> {
    if (this.started) return
    this.shutdown = new AbortController()
    await this.components.node.handle(
      MODEL_PROTOCOL,
      (stream, connection) => {
        this.handleInbound(stream, connection).catch((err) => {
          this.log.error('inbound handler failed: %s', toError(err).message)
        })
      },
      {
        maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
        maxOutboundStreams: MAX_STREAMS_PER_CONNECTION,
      },
    )
    this.started = true
  }

  /** Unregister the handler and abort transfers in flight. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.shutdown.abort(new NotStartedError('model exchange stopped'))
    await this.components.node.unhandle(MODEL_PROTOCOL)
  }

  /**
   * Send a model to a peer. Resolves with the bytes written once they are all
   * handed to the transport; rejects if the dial fails, the receiver resets the
   * stream, `signal` aborts (with its reason) or the total deadline passes
   * (StreamTimeoutError). Do not mutate `state` until it settles: its values
   * are sent without a copy. At most 2 pushes to one peer at a time.
   */
  async push(peer: PeerId | string, state: ModelState, options: PushOptions = {}): Promise<number> {
    if (!this.started) throw new NotStartedError('model exchange is not started')
    const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
    const described = this.describe?.() ?? {}
    const encoded = encodeModel(state, {
      task: this.task,
      coordinate: options.coordinate ?? described.coordinate,
      accuracy: options.accuracy ?? described.accuracy,
    })
    const deadline = AbortSignal.timeout(this.totalTimeoutMs)
    const signals = [deadline, this.shutdown.signal]
    if (options.signal != null) signals.push(options.signal)
    const signal = AbortSignal.any(signals)

    let sent = 0
    let stream: Stream | undefined
    try {
      stream = await this.components.node.dialProtocol(peerId, MODEL_PROTOCOL, { signal })
      const s = stream
      const write = async (bytes: Uint8Array): Promise<void> => {
        if (!s.send(bytes)) await s.onDrain({ signal })
        sent += bytes.byteLength
        this.stats.bytesSent += bytes.byteLength
      }
      const head = new Uint8Array(encoded.prefix.byteLength + encoded.header.byteLength)
      head.set(encoded.prefix)
      head.set(encoded.header, encoded.prefix.byteLength)
      await write(head)
      for (const chunk of encoded.chunks) {
        for (let off = 0; off < chunk.byteLength; off += this.chunkBytes) {
          signal.throwIfAborted()
          await write(chunk.subarray(off, off + this.chunkBytes))
        }
      }
      await stream.close({ signal })
      this.stats.modelsSent++
      this.log.trace('pushed %d bytes to %p', sent, peerId)
      return sent
    } catch (err) {
      let e: Error
      if (deadline.aborted) e = new StreamTimeoutError(`push exceeded ${this.totalTimeoutMs} ms`)
      else if (signal.aborted && signal.reason instanceof Error) e = signal.reason
      else e = toError(err)
      this.stats.pushFailures++
      stream?.abort(e)
      this.log('push to %p failed after %d bytes: %s: %s', peerId, sent, e.name, e.message)
      throw e
    }
  }

  private async handleInbound(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    if (!this.started) {
      stream.abort(new NotStartedError('model exchange stopped'))
      return
    }
    if (this.activeInbound >= this.maxConcurrentInbound) {
      this.refuse(stream, from, new TransferLimitError(`${this.activeInbound} inbound transfers in progress`))
      return
    }
    this.activeInbound++
    let decoded: DecodedModel
    try {
      decoded = await this.receive(stream)
    } catch (err) {
      this.refuse(stream, from, toError(err))
      return
    } finally {
      this.activeInbound--
    }
    this.stats.modelsReceived++
    // Our write end was never used; closing it completes the stream's shutdown.
    stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) }).catch((err) => {
      stream.abort(toError(err))
    })
    this.log.trace('received model age %d from %s', decoded.meta.age, from)
    try {
      await this.onModel?.(decoded.state, decoded.meta, from)
    } catch (err) {
      this.log.error('onModel failed for a model from %s: %s', from, toError(err).message)
    }
  }

  private refuse(stream: Stream, from: string, err: Error): void {
    if (err instanceof NotStartedError) {
      // Our own shutdown, not the sender's doing: neither counted nor reported.
      stream.abort(err)
      return
    }
    this.stats.rejected[err.name] = (this.stats.rejected[err.name] ?? 0) + 1
    const verdict = verdictOf(err)
    this.log('refused model stream from %s (%s): %s: %s', from, verdict, err.name, err.message)
    stream.abort(err)
    try {
      this.onRejected?.(from, err, verdict)
    } catch (cbErr) {
      this.log.error('onRejected failed: %s', toError(cbErr).message)
    }
  }

  /**
   * Read one frame from `stream` into a FrameDecoder. Bytes are copied into a
   * buffer sized by the validated header as each message arrives, so neither
   * yamux's eager window updates nor a peer that never stops can grow memory
   * past the frame limit. Settles on: whole frame + remote end closed (ok),
   * any validation error, remote reset, idle timeout, total deadline, stop().
   */
  private receive(stream: Stream): Promise<DecodedModel> {
    return new Promise<DecodedModel>((resolve, reject) => {
      const decoder = new FrameDecoder(this.expect)
      let settled = false
      let counted = 0

      const cleanup = (): void => {
        settled = true
        clearTimeout(idleTimer)
        clearTimeout(totalTimer)
        this.shutdown.signal.removeEventListener('abort', onShutdown)
        stream.removeEventListener('message', onMessage)
        stream.removeEventListener('remoteCloseWrite', onRemoteEnd)
        stream.removeEventListener('close', onClose)
        this.stats.bytesReceived += decoder.bytesReceived - counted
        counted = decoder.bytesReceived
      }
      const fail = (err: Error): void => {
        if (settled) return
        cleanup()
        reject(err)
      }
      // The frame is complete only when the sender closed its write end after the
      // payload: trailing bytes would otherwise go unnoticed.
      const maybeFinish = (): void => {
        if (settled) return
        if (stream.remoteWriteStatus === 'writable' || stream.readBufferLength > 0) return
        try {
          decoder.end()
          const result = decoder.result()
          cleanup()
          resolve(result)
        } catch (err) {
          fail(toError(err))
        }
      }
      const onMessage = (evt: { data: Parameters<FrameDecoder['push']>[0] }): void => {
        if (settled) return
        idleTimer.refresh()
        try {
          decoder.push(evt.data)
        } catch (err) {
          fail(toError(err))
          return
        }
        maybeFinish()
      }
      // Yamux processes a frame's FIN flag before its data: look again once the
      // frame's data has been dispatched.
      const onRemoteEnd = (): void => queueMicrotask(maybeFinish)
      const onClose = (evt: Event): void => {
        const cause = (evt as Event & { error?: Error }).error
        if (cause != null) fail(new TruncatedFrameError(`stream reset mid-frame: ${cause.message}`))
        else queueMicrotask(maybeFinish)
      }
      const onShutdown = (): void => fail(new NotStartedError('model exchange stopped'))

      const idleTimer = setTimeout(() => {
        fail(new StreamTimeoutError(`no data for ${this.idleTimeoutMs} ms`))
      }, this.idleTimeoutMs)
      const totalTimer = setTimeout(() => {
        fail(new StreamTimeoutError(`transfer exceeded ${this.totalTimeoutMs} ms`))
      }, this.totalTimeoutMs)

      // The remote may have reset the stream before we got here (its close event
      // is then gone): check the status instead of waiting for events.
      if (stream.status === 'reset' || stream.status === 'aborted') {
        fail(new TruncatedFrameError(`stream was ${stream.status} before the frame arrived`))
        return
      }
      this.shutdown.signal.addEventListener('abort', onShutdown)
      stream.addEventListener('message', onMessage)
      stream.addEventListener('remoteCloseWrite', onRemoteEnd)
      stream.addEventListener('close', onClose)
      // Data buffered before our listener existed is dispatched on a microtask;
      // if the sender already closed, its remoteCloseWrite fired before we
      // listened, so check once that dispatch has run.
      queueMicrotask(() => setTimeout(maybeFinish, 0))
    })
  }
}

/**
 * Model exchange over direct libp2p streams (/gossip-learn/model/1.0.0; 2.0.0 for delta frames;
 * 2.1.0 for partial frames that leave quiet inputs out). A sender offers the newest it needs
 * first, and a receiver that speaks only older ids gets frames it can read.
 *
 * One stream carries one model: the sender writes a length-prefixed header and
 * the payload in its value codec (raw-f32 unless configured), then closes its
 * write end. The receiver validates as bytes
 * arrive (sizes before allocating, then every value), with its own idle timer
 * and total deadline, and caps on concurrent transfers: global, per remote peer,
 * and a reserve of slots for known-good peers. Any failure is a typed error:
 * counted by name, logged (peer-supplied text escaped), the stream reset, the
 * callback not called.
 *
 * Models never travel over a limited (relayed) connection, in either direction: the handler does
 * not opt in to limited connections (libp2p refuses such inbound streams), and a push to a peer we
 * reach only through a relay fails at once with RelayedOnlyError, without dialling, so the caller
 * can wait for DCUtR's direct connection instead of penalising the peer.
 */
import type { ComponentLogger, Connection, Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { ModelState } from '../model/types.ts'
import { anySignal, release } from '../util/abort.ts'
import { linkOf } from './connectivity.ts'
import {
  CLOSE_TIMEOUT_MS,
  DEFAULT_CHUNK_BYTES,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT_INBOUND,
  DEFAULT_MAX_INBOUND_PER_PEER,
  DEFAULT_RESERVED_INBOUND,
  DEFAULT_TOTAL_TIMEOUT_MS,
  DELTA_ACK,
  DELTA_PROTOCOL,
  MAX_HEADER_BYTES,
  MAX_STREAMS_PER_CONNECTION,
  MODEL_PROTOCOL,
  QUIET_PROTOCOL,
} from './constants.ts'
import {
  DeltaNotAppliedError,
  FairShareError,
  NotStartedError,
  PeerTransferLimitError,
  RelayedOnlyError,
  StreamTimeoutError,
  TransferLimitError,
  TruncatedFrameError,
  toError,
  type Verdict,
  verdictOf,
} from './errors.ts'
import { logSafeMessage } from './log-safe.ts'
import {
  type DecodedModel,
  type DecodeExpectations,
  deriveMaxFrameBytes,
  encodeModel,
  type ModelMeta,
  type SenderMeta,
  type TensorLayout,
} from './wire/codec.ts'
import { type CodecOptions, DEFAULT_CODEC, type ModelEncoder, parseCodecSpec } from './wire/codecs/index.ts'
import { DeltaReceiver, DeltaSender, pushCodecSpec, splitDeltaSpec } from './wire/delta.ts'
import { FrameDecoder } from './wire/frame-decoder.ts'

export type { ModelMeta, SenderMeta, TensorLayout }
export { DELTA_PROTOCOL, MODEL_PROTOCOL, QUIET_PROTOCOL }

/** What the exchange needs from its host (`getConnections`: to see that a peer is reachable only through a relay). */
export interface ModelExchangeComponents {
  node: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol'> & Partial<Pick<Libp2p, 'getConnections'>>
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
  /** Inbound transfers from one remote peer at once (default 1): no peer can hold every slot. */
  maxInboundPerPeer?: number
  /**
   * Of maxConcurrentInbound, slots only peers `priority` favours may take (default 1; at most
   * maxConcurrentInbound - 1; none without `priority`).
   */
  reservedInbound?: number
  /** Known-good peers (the daemon: a positive peer-policy score): they may use the reserved slots. */
  priority?: (peerId: string) => boolean
  /** Payload slice per stream.send() (default 256 KiB). */
  chunkBytes?: number
  /**
   * Codec spec for pushed models (`raw-f32`, `f16`, `int8`, `topk:0.1`, `partial:0.1+int8`); default raw-f32.
   * Inbound models may use any known codec. A selection's reference is this exchange's, shared by every destination.
   */
  codec?: string
  /** Options of the push codec: the quiet inputs partial frames leave out. */
  codecOptions?: CodecOptions
  onModel?: OnModel
  onRejected?: OnRejected
  /**
   * Asked once per inbound model before any of it is read (the learner's fair share): false
   * refuses the stream unread, as FairShareError, without onRejected (the caller reported it).
   * A flood then costs the receiver a stream open, not the decryption and decoding of a model.
   */
  admit?: (peerId: string) => boolean
  /** Coordinate/accuracy to put in each pushed header, unless push() is given them. */
  describe?: () => SenderMeta
  /**
   * Also handle DELTA_PROTOCOL (default true). False makes this node look like one from before
   * delta frames to delta senders, which then push it plain frames (tests of mixed networks).
   */
  deltaProtocol?: boolean
  /**
   * Also handle QUIET_PROTOCOL (default true, unless deltaProtocol is false). False makes this
   * node look like one from before quiet inputs: senders push it frames with every input row.
   */
  quietProtocol?: boolean
}

export interface PushOptions extends SenderMeta {
  signal?: AbortSignal
}

/** Where a push was when it failed (ExchangeCounters.pushFailuresByReason). */
export type PushStage = 'dial' | 'send' | 'close' | 'ack'

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
  /**
   * Failed pushes by `stage:ErrorName`, the stage being where the push was when it failed:
   * `dial` (opening the stream), `send` (writing the frame), `close` (closing our end) or `ack`
   * (waiting for a delta frame's acknowledgement). Tells a peer nobody can reach from a slow link.
   */
  pushFailuresByReason: Record<string, number>
  /** The latest error message for each key of `pushFailuresByReason` (log-safe, shortened). */
  pushFailureMessages: Record<string, string>
  /** Pushes not made because the peer was reachable only through a relay (RelayedOnlyError; not failures). */
  pushesRelayedOnly: number
  /** Inbound transfers refused, by error name. */
  rejected: Record<string, number>
  /** Inbound transfers in progress now. */
  inboundTransfers: number
  /** Most inbound transfers at once (`maxConcurrentInbound`): refusals beyond it are `TransferLimitError`. */
  maxInbound: number
  /** Accepted inbound models and their frame bytes, by value codec name. */
  receivedByCodec: Record<string, { models: number; bytes: number }>
  /** Bytes written by pushes (failed ones included) and completed pushes, by codec spec. */
  sentByCodec: Record<string, { models: number; bytes: number }>
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
  private readonly maxInboundPerPeer: number
  private readonly reservedInbound: number
  private readonly priority?: (peerId: string) => boolean
  private readonly chunkBytes: number
  private readonly onModel?: OnModel
  private readonly admitHook?: (peerId: string) => boolean
  private readonly onRejected?: OnRejected
  private readonly describe?: () => SenderMeta
  private readonly encoder: ModelEncoder
  /** The spec pushes are counted under (`delta+` before the encoder's when delta frames are on). */
  private readonly spec: string
  /** Delta frames to nodes that read quiet inputs (QUIET_PROTOCOL); the same as plainDeltaSender without quiet inputs. */
  private readonly deltaSender?: DeltaSender
  /** Delta frames with every input row, to nodes from before quiet inputs (DELTA_PROTOCOL). */
  private readonly plainDeltaSender?: DeltaSender
  /** Frames of the inner codec with every input row: to nodes that speak only older protocols. */
  private readonly plainEncoder: ModelEncoder
  /** Protocol ids a push offers, best first. */
  private readonly offers: readonly string[]
  /** The last push to each destination with delta frames on: the next waits for it (delta.ts). */
  private readonly deltaChains = new Map<string, Promise<unknown>>()
  /** References of the senders of delta frames (any node decodes them, whatever it sends). */
  private readonly deltaReceiver = new DeltaReceiver()
  /** Protocol ids handled: all three, fewer when deltaProtocol or quietProtocol is false. */
  private readonly protocols: readonly string[]
  private readonly stats: Omit<ExchangeCounters, 'inboundTransfers' | 'maxInbound'> = {
    modelsSent: 0,
    modelsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    pushFailures: 0,
    pushFailuresByReason: {},
    pushFailureMessages: {},
    pushesRelayedOnly: 0,
    rejected: {},
    receivedByCodec: {},
    sentByCodec: {},
  }
  private started = false
  private activeInbound = 0
  /** Transfers in progress by remote peer (entries removed at 0). */
  private readonly inboundByPeer = new Map<string, number>()
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
    this.maxInboundPerPeer = init.maxInboundPerPeer ?? DEFAULT_MAX_INBOUND_PER_PEER
    this.priority = init.priority
    // Without a way to tell known-good peers, a reserve would only shrink the pool.
    this.reservedInbound =
      init.priority === undefined
        ? 0
        : Math.max(
            0,
            Math.min(init.reservedInbound ?? DEFAULT_RESERVED_INBOUND, this.maxConcurrentInbound - 1),
          )
    this.chunkBytes = init.chunkBytes ?? DEFAULT_CHUNK_BYTES
    this.onModel = init.onModel
    this.admitHook = init.admit
    this.onRejected = init.onRejected
    this.describe = init.describe
    // Throws InvalidCodecSpecError on an unknown spec: a configuration error, caught at construction.
    const spec = init.codec ?? DEFAULT_CODEC
    const { delta, inner } = splitDeltaSpec(spec)
    const quiet = init.codecOptions?.quietInputs !== undefined
    const plainOptions = { ...init.codecOptions, quietInputs: undefined }
    this.encoder = parseCodecSpec(inner, init.codecOptions)
    this.plainEncoder = quiet ? parseCodecSpec(inner, plainOptions) : this.encoder
    this.spec = pushCodecSpec(spec)
    if (delta) {
      this.deltaSender = new DeltaSender(inner, { codec: init.codecOptions })
      this.plainDeltaSender = quiet ? new DeltaSender(inner, { codec: plainOptions }) : this.deltaSender
    }
    this.protocols =
      init.deltaProtocol === false
        ? [MODEL_PROTOCOL]
        : init.quietProtocol === false
          ? [DELTA_PROTOCOL, MODEL_PROTOCOL]
          : [QUIET_PROTOCOL, DELTA_PROTOCOL, MODEL_PROTOCOL]
    this.offers = [...(quiet ? [QUIET_PROTOCOL] : []), ...(delta ? [DELTA_PROTOCOL] : []), MODEL_PROTOCOL]
  }

  /** A snapshot of the counters. */
  get counters(): ExchangeCounters {
    return {
      ...this.stats,
      inboundTransfers: this.activeInbound,
      maxInbound: this.maxConcurrentInbound,
      rejected: { ...this.stats.rejected },
      pushFailuresByReason: { ...this.stats.pushFailuresByReason },
      pushFailureMessages: { ...this.stats.pushFailureMessages },
      sentByCodec: Object.fromEntries(
        Object.entries(this.stats.sentByCodec).map(([name, c]) => [name, { ...c }]),
      ),
      receivedByCodec: Object.fromEntries(
        Object.entries(this.stats.receivedByCodec).map(([name, c]) => [name, { ...c }]),
      ),
    }
  }

  /** The codec spec pushed models are encoded with. */
  get codec(): string {
    return this.spec
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
    for (const protocol of this.protocols) {
      await this.components.node.handle(
        protocol,
        (stream, connection) => {
          this.handleInbound(stream, connection).catch((err) => {
            this.log.error('inbound handler failed: %s', logSafeMessage(toError(err)))
          })
        },
        {
          maxInboundStreams: MAX_STREAMS_PER_CONNECTION,
          maxOutboundStreams: MAX_STREAMS_PER_CONNECTION,
          // No model over a relay: libp2p refuses this protocol's streams on limited connections.
          runOnLimitedConnection: false,
        },
      )
    }
    this.started = true
  }

  /** Unregister the handler and abort transfers in flight. Safe to call twice. */
  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    this.shutdown.abort(new NotStartedError('model exchange stopped'))
    for (const protocol of this.protocols) await this.components.node.unhandle(protocol)
  }

  /**
   * Send a model to a peer. Resolves with the bytes written once they are all
   * handed to the transport; rejects if the dial fails, the receiver resets the
   * stream, `signal` aborts (with its reason) or the total deadline passes
   * (StreamTimeoutError). Do not mutate `state` until it settles: its values
   * are sent without a copy. At most 2 pushes to one peer at a time. A peer we
   * reach only through a relay gets nothing: RelayedOnlyError, before any dial.
   */
  async push(peer: PeerId | string, state: ModelState, options: PushOptions = {}): Promise<number> {
    if (this.deltaSender === undefined) return this.pushOnce(peer, state, options)
    // One delta push per destination at a time: each names the reference the one before left.
    const key = peer.toString()
    const before = this.deltaChains.get(key)
    const run = (before ?? Promise.resolve()).catch(() => {}).then(() => this.pushOnce(peer, state, options))
    this.deltaChains.set(key, run)
    try {
      return await run
    } finally {
      if (this.deltaChains.get(key) === run) this.deltaChains.delete(key)
    }
  }

  private async pushOnce(peer: PeerId | string, state: ModelState, options: PushOptions): Promise<number> {
    if (!this.started) throw new NotStartedError('model exchange is not started')
    const peerId = typeof peer === 'string' ? peerIdFromString(peer) : peer
    // Re-dialling would only return (or duplicate) the relayed connection; DCUtR is already at work on it.
    const existing = this.components.node.getConnections?.(peerId)
    if (existing !== undefined && linkOf(existing) === 'relayed') {
      throw this.relayedOnly(peerId, 'only a relayed connection is open')
    }
    const described = this.describe?.() ?? {}
    const meta = {
      task: this.task,
      coordinate: options.coordinate ?? described.coordinate,
      accuracy: options.accuracy ?? described.accuracy,
      wantsModel: options.wantsModel ?? described.wantsModel,
    }
    const to = peerId.toString()
    const deadline = AbortSignal.timeout(this.totalTimeoutMs)
    const signals = [deadline, this.shutdown.signal]
    if (options.signal != null) signals.push(options.signal)
    // Not AbortSignal.any, which leaks on a long-lived source (src/util/abort.ts); released below.
    const signal = anySignal(signals)

    let sent = 0
    let stream: Stream | undefined
    let stage: PushStage = 'dial'
    try {
      // Offered best first: a node from before quiet inputs answers DELTA_PROTOCOL and gets every
      // input row; one from before delta frames answers MODEL_PROTOCOL and gets plain frames.
      stream = await this.components.node.dialProtocol(peerId, [...this.offers], { signal })
      const s = stream
      const quiet = s.protocol === QUIET_PROTOCOL
      const deltaSender =
        s.protocol === MODEL_PROTOCOL ? undefined : quiet ? this.deltaSender : this.plainDeltaSender
      const delta = deltaSender?.encode(to, state, meta)
      const encoded =
        delta?.encoded ?? encodeModel(state, { ...meta, codec: quiet ? this.encoder : this.plainEncoder })
      const spec = delta === undefined ? this.encoder.spec : this.spec
      const bySpec = this.stats.sentByCodec[spec] ?? { models: 0, bytes: 0 }
      this.stats.sentByCodec[spec] = bySpec
      const acked = delta === undefined ? undefined : deltaAck(s, signal)
      // Settled by the stream's end whatever happens to the writes; their error is the one to report.
      acked?.catch(() => {})
      const write = async (bytes: Uint8Array): Promise<void> => {
        if (!s.send(bytes)) await s.onDrain({ signal })
        sent += bytes.byteLength
        this.stats.bytesSent += bytes.byteLength
        bySpec.bytes += bytes.byteLength
      }
      const head = new Uint8Array(encoded.prefix.byteLength + encoded.header.byteLength)
      head.set(encoded.prefix)
      head.set(encoded.header, encoded.prefix.byteLength)
      stage = 'send'
      await write(head)
      for (const chunk of encoded.chunks) {
        for (let off = 0; off < chunk.byteLength; off += this.chunkBytes) {
          signal.throwIfAborted()
          await write(chunk.subarray(off, off + this.chunkBytes))
        }
      }
      stage = 'close'
      await stream.close({ signal })
      if (acked !== undefined) {
        stage = 'ack'
        await acked
        delta?.commit()
      }
      this.stats.modelsSent++
      bySpec.models++
      this.log.trace('pushed %d bytes to %p', sent, peerId)
      return sent
    } catch (err) {
      // The dial reached the peer only through a relay: libp2p refuses the model stream there.
      if (stream === undefined && (err as Error)?.name === 'LimitedConnectionError') {
        throw this.relayedOnly(peerId, 'the dial ended on a relayed connection')
      }
      let e: Error
      if (deadline.aborted) e = new StreamTimeoutError(`push exceeded ${this.totalTimeoutMs} ms`)
      else if (signal.aborted && signal.reason instanceof Error) e = signal.reason
      else e = toError(err)
      this.stats.pushFailures++
      const reason = `${stage}:${e.name}`
      this.stats.pushFailuresByReason[reason] = (this.stats.pushFailuresByReason[reason] ?? 0) + 1
      this.stats.pushFailureMessages[reason] = logSafeMessage(e)
      // Most failures leave the receiver's reference as it was; the second in a row starts over.
      this.deltaSender?.failed(to)
      if (this.plainDeltaSender !== this.deltaSender) this.plainDeltaSender?.failed(to)
      stream?.abort(e)
      this.log(
        'push to %p failed at %s after %d bytes: %s: %s',
        peerId,
        stage,
        sent,
        e.name,
        logSafeMessage(e),
      )
      throw e
    } finally {
      release(signal)
    }
  }

  /** Counts and logs a push not made because `peerId` is reachable only through a relay. */
  private relayedOnly(peerId: PeerId, why: string): RelayedOnlyError {
    this.stats.pushesRelayedOnly++
    this.log('not pushing to %p: %s; waiting for a direct connection', peerId, why)
    return new RelayedOnlyError(`${peerId.toString()}: ${why}`)
  }

  private async handleInbound(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString()
    if (!this.started) {
      stream.abort(new NotStartedError('model exchange stopped'))
      return
    }
    const refusal = this.admit(from)
    if (refusal !== undefined) {
      this.refuse(stream, from, refusal)
      return
    }
    if (this.admitHook?.(from) === false) {
      const err = new FairShareError('over its fair share of models')
      this.stats.rejected[err.name] = (this.stats.rejected[err.name] ?? 0) + 1
      stream.abort(err)
      return
    }
    this.activeInbound++
    this.inboundByPeer.set(from, (this.inboundByPeer.get(from) ?? 0) + 1)
    let received: { decoded: DecodedModel; frameBytes: number }
    try {
      received = await this.receive(stream)
      const base = received.decoded.meta.base
      if (base !== undefined) {
        received.decoded.state = this.deltaReceiver.apply(from, base, received.decoded.state)
      }
    } catch (err) {
      this.refuse(stream, from, toError(err))
      return
    } finally {
      this.activeInbound--
      const left = (this.inboundByPeer.get(from) ?? 1) - 1
      if (left > 0) this.inboundByPeer.set(from, left)
      else this.inboundByPeer.delete(from)
    }
    const { decoded, frameBytes } = received
    this.stats.modelsReceived++
    const byCodec = this.stats.receivedByCodec[decoded.meta.codec] ?? { models: 0, bytes: 0 }
    byCodec.models++
    byCodec.bytes += frameBytes
    this.stats.receivedByCodec[decoded.meta.codec] = byCodec
    // Our write end was used only to acknowledge a delta frame; closing it completes the stream's shutdown.
    if (decoded.meta.base !== undefined) stream.send(Uint8Array.of(DELTA_ACK))
    stream.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) }).catch((err) => {
      stream.abort(toError(err))
    })
    this.log.trace('received model age %d from %s', decoded.meta.age, from)
    try {
      await this.onModel?.(decoded.state, decoded.meta, from)
    } catch (err) {
      this.log.error('onModel failed for a model from %s: %s', from, logSafeMessage(err))
    }
  }

  /**
   * Whether a new inbound transfer from `from` may start: undefined, or the error to refuse it
   * with. A peer at its own limit is refused whatever the global count; the last
   * `reservedInbound` global slots go only to peers `priority` favours.
   */
  private admit(from: string): Error | undefined {
    const mine = this.inboundByPeer.get(from) ?? 0
    if (mine >= this.maxInboundPerPeer) {
      return new PeerTransferLimitError(`${mine} inbound transfers from this peer in progress`)
    }
    if (this.activeInbound >= this.maxConcurrentInbound) {
      return new TransferLimitError(`${this.activeInbound} inbound transfers in progress`)
    }
    if (
      this.reservedInbound > 0 &&
      this.activeInbound >= this.maxConcurrentInbound - this.reservedInbound &&
      this.priority?.(from) !== true
    ) {
      return new TransferLimitError(
        `${this.activeInbound} inbound transfers in progress; the last ${this.reservedInbound} kept for known-good peers`,
      )
    }
    return undefined
  }

  private refuse(stream: Stream, from: string, err: Error): void {
    if (err instanceof NotStartedError) {
      // Our own shutdown, not the sender's doing: neither counted nor reported.
      stream.abort(err)
      return
    }
    this.stats.rejected[err.name] = (this.stats.rejected[err.name] ?? 0) + 1
    const verdict = verdictOf(err)
    this.log('refused model stream from %s (%s): %s: %s', from, verdict, err.name, logSafeMessage(err))
    stream.abort(err)
    try {
      this.onRejected?.(from, err, verdict)
    } catch (cbErr) {
      this.log.error('onRejected failed: %s', logSafeMessage(cbErr))
    }
  }

  /**
   * Read one frame from `stream` into a FrameDecoder. Bytes are copied into a
   * buffer sized by the validated header as each message arrives, so neither
   * yamux's eager window updates nor a peer that never stops can grow memory
   * past the frame limit. Settles on: whole frame + remote end closed (ok),
   * any validation error, remote reset, idle timeout, total deadline, stop().
   */
  private receive(stream: Stream): Promise<{ decoded: DecodedModel; frameBytes: number }> {
    return new Promise<{ decoded: DecodedModel; frameBytes: number }>((resolve, reject) => {
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
          const decoded = decoder.result()
          cleanup()
          resolve({ decoded, frameBytes: decoder.bytesReceived })
        } catch (err) {
          fail(toError(err))
        }
      }
      const onMessage = (evt: { data: Parameters<FrameDecoder['push']>[0] }): void => {
        if (settled) return
        messages++
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

      let messages = 0
      const onIdle = (): void => {
        // Timers run before the loop reads sockets: after a stall of our own loop, bytes that came
        // during it still wait unread. Read them first (a message refreshes this timer).
        const seen = messages
        setImmediate(() => {
          if (messages === seen) fail(new StreamTimeoutError(`no data for ${this.idleTimeoutMs} ms`))
        })
      }
      const idleTimer = setTimeout(onIdle, this.idleTimeoutMs)
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

/**
 * Resolves once the receiver acknowledged a delta frame (DELTA_ACK), rejects with
 * DeltaNotAppliedError when the stream ends or is reset without it, or with the abort reason.
 */
function deltaAck(stream: Stream, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('remoteCloseWrite', onEnd)
      stream.removeEventListener('close', onEnd)
      signal.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onMessage = (evt: { data: Uint8Array | { subarray(): Uint8Array } }): void => {
      const bytes = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      done(
        bytes.byteLength === 1 && bytes[0] === DELTA_ACK
          ? undefined
          : new DeltaNotAppliedError(`unexpected reply of ${bytes.byteLength} bytes`),
      )
    }
    const onEnd = (evt: Event): void => {
      const cause = (evt as Event & { error?: Error }).error
      done(
        new DeltaNotAppliedError(
          `stream ended without an acknowledgement${cause ? `: ${cause.message}` : ''}`,
        ),
      )
    }
    const onAbort = (): void =>
      done(signal.reason instanceof Error ? signal.reason : new DeltaNotAppliedError('aborted'))
    stream.addEventListener('message', onMessage)
    stream.addEventListener('remoteCloseWrite', onEnd)
    stream.addEventListener('close', onEnd)
    signal.addEventListener('abort', onAbort)
  })
}

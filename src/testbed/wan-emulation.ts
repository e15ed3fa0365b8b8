/**
 * Wide-area link emulation for the testbed. This kernel has no netem, so the delay lives in
 * the application: every secured connection is wrapped in a message stream that holds each
 * outgoing chunk until (uplink departure time + one-way delay of the link's region pair).
 *
 * - One-way delay is RTT / 2 of the region pair, applied in the sending direction by each
 *   end, so a round trip (a libp2p ping included) takes the configured RTT.
 * - Each peer's uplink is a single FIFO paced at `uplinkMbps` across all its connections:
 *   a chunk departs when the previous one has left, after size * 8 / rate.
 * - Each connection (one TCP flow) is also paced at its region pair's throughput: an explicit
 *   `throughputMbps` entry, else the Mathis et al. (1997) figure from the pair's RTT and loss
 *   rate, (MSS / RTT) * sqrt(3/2) / sqrt(p). A chunk leaves at the later of its uplink and its
 *   flow departure, so a flow gets min(uplink share, pair throughput).
 * - Order is kept per connection (departure times grow and the link delay is constant).
 * - Backpressure: `send()` returns false while a connection holds more than its high-water
 *   mark of unreleased bytes, and 'drain' follows when half of it has left.
 *
 * Where: a wrapper around the connection encrypter (Noise), because the remote peer is
 * known only once the handshake is done. The TCP and Noise handshakes are therefore not
 * delayed; everything after them is (multistream, yamux, identify, gossipsub, ping, models).
 * Bytes are counted and paced as plaintext (Noise adds 18 bytes per 64 KiB, TCP/IP headers
 * ~3 %; both are ignored).
 *
 * The topology it emulates (regions, RTTs, loss, throughput) is a links file: wan-links.ts.
 */
import type {
  AbortOptions,
  ConnectionEncrypter,
  MessageStream,
  SecureConnectionOptions,
  SecuredConnection,
  StreamCloseEvent,
  StreamMessageEvent,
} from '@libp2p/interface'
import { AbstractMessageStream, type SendResult } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { EncrypterComponents, LinkEmulation, LinkEmulationStats } from '../node/emulation.ts'
import { parseWanLinks, regionRttMs, regionThroughputMbps, type WanLinks } from './wan-links.ts'

/** One WanEmulation was installed in two nodes; its uplink and counters belong to one peer. */
export class WanEmulationSharedError extends Error {
  static readonly name = 'WanEmulationSharedError'
  override readonly name = 'WanEmulationSharedError'
}

/** At least 1 MiB may wait in a connection before send() says false: one model slice plus headroom. */
export const MIN_HIGH_WATER_BYTES = 1024 * 1024
/** Per-node counters of the emulation (for /status and the testbed JSON). */
export type WanStats = LinkEmulationStats

/** A FIFO paced at a fixed rate: one peer's uplink (shared by its connections) or one flow's path. */
class Pacer {
  private freeAt = 0
  constructor(
    private readonly bytesPerMs: number,
    private readonly now: () => number,
  ) {}

  /** Reserves the uplink for `bytes`; returns when their last byte has left (ms, `now` base). */
  reserve(bytes: number): number {
    this.freeAt = Math.max(this.now(), this.freeAt) + bytes / this.bytesPerMs
    return this.freeAt
  }
}

interface LinkParams {
  oneWayMs: number
  uplink: Pacer
  /** The region pair's throughput for this connection; undefined = only the uplink paces it. */
  flow?: Pacer
  highWaterBytes: number
  now: () => number
  onSend: (bytes: number) => void
  onQueued: (delta: number) => void
}

interface Pending {
  releaseAt: number
  data: Uint8ArrayList
}

/**
 * A message stream over `inner` that delivers each sent chunk to `inner` at
 * (uplink departure + one-way delay); reads, pause/resume and close pass through.
 */
export class EmulatedLinkStream extends AbstractMessageStream {
  private readonly inner: MessageStream
  private readonly link: LinkParams
  private readonly queue: Pending[] = []
  private queued = 0
  private timer?: ReturnType<typeof setTimeout>
  private innerNeedsDrain = false
  private emptyWaiters: Array<() => void> = []

  constructor(inner: MessageStream, link: LinkParams) {
    super({
      log: inner.log.newScope('wan'),
      inactivityTimeout: inner.inactivityTimeout,
      maxReadBufferLength: inner.maxReadBufferLength,
      direction: inner.direction,
    })
    this.inner = inner
    this.link = link
    inner.addEventListener('message', (evt: StreamMessageEvent) => {
      this.onData(evt.data)
    })
    inner.addEventListener('close', (evt: StreamCloseEvent) => {
      this.dropQueue()
      if (evt.error != null) {
        if (evt.local === true) this.abort(evt.error)
        else this.onRemoteReset()
      } else {
        this.onTransportClosed()
      }
    })
    inner.addEventListener('drain', () => {
      this.innerNeedsDrain = false
      this.release()
    })
    inner.addEventListener('remoteCloseWrite', () => {
      this.onRemoteCloseWrite()
    })
  }

  /** Bytes accepted but not yet handed to the inner stream. */
  get queuedBytes(): number {
    return this.queued
  }

  sendData(data: Uint8ArrayList): SendResult {
    const bytes = data.byteLength
    // The flow leaves at the slower of the two: the node's uplink and the pair's throughput.
    const departs = Math.max(this.link.uplink.reserve(bytes), this.link.flow?.reserve(bytes) ?? 0)
    const releaseAt = departs + this.link.oneWayMs
    this.queue.push({ releaseAt, data })
    this.queued += bytes
    this.link.onQueued(bytes)
    this.link.onSend(bytes)
    if (this.timer === undefined && !this.innerNeedsDrain && this.queue.length === 1) this.schedule()
    return { sentBytes: bytes, canSendMore: this.queued < this.link.highWaterBytes }
  }

  sendReset(err: Error): void {
    this.dropQueue()
    this.inner.abort(err)
  }

  sendPause(): void {
    this.inner.pause()
  }

  sendResume(): void {
    this.inner.resume()
  }

  async close(options?: AbortOptions): Promise<void> {
    await this.flushed(options)
    await this.inner.close(options)
  }

  /** Resolves once everything sent so far has reached the inner stream (or it closed). */
  async flushed(options: AbortOptions = {}): Promise<void> {
    while ((this.queue.length > 0 || this.writeBufferLength > 0) && this.status === 'open') {
      options.signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(options.signal?.reason)
        options.signal?.addEventListener('abort', onAbort, { once: true })
        this.emptyWaiters.push(() => {
          options.signal?.removeEventListener('abort', onAbort)
          resolve()
        })
      })
    }
  }

  private schedule(): void {
    const head = this.queue[0]
    if (head === undefined) return
    // Ceil, and re-check on wake: a timer may fire a fraction of a ms early, and an early release would
    // make a ping shorter than the configured RTT.
    this.timer = setTimeout(this.release, Math.max(0, Math.ceil(head.releaseAt - this.link.now())))
  }

  private readonly release = (): void => {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    if (this.innerNeedsDrain) return
    const now = this.link.now()
    const batch = new Uint8ArrayList()
    while (this.queue.length > 0 && this.queue[0]!.releaseAt <= now) {
      batch.append(this.queue.shift()!.data)
    }
    if (batch.byteLength > 0) {
      this.queued -= batch.byteLength
      this.link.onQueued(-batch.byteLength)
      try {
        // One inner send per batch: fewer Noise frames and socket writes than one per chunk.
        if (!this.inner.send(batch)) this.innerNeedsDrain = true
      } catch (err) {
        this.abort(err as Error)
        return
      }
    }
    if (this.writableNeedsDrain && this.queued <= this.link.highWaterBytes / 2)
      this.safeDispatchEvent('drain')
    if (this.queue.length === 0) {
      const waiters = this.emptyWaiters
      this.emptyWaiters = []
      for (const w of waiters) w()
    } else if (!this.innerNeedsDrain) {
      this.schedule()
    }
  }

  private dropQueue(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.link.onQueued(-this.queued)
    this.queue.length = 0
    this.queued = 0
    const waiters = this.emptyWaiters
    this.emptyWaiters = []
    for (const w of waiters) w()
  }
}

export interface WanEmulationInit {
  /** The topology; `peers` must map this node and its remotes to regions (unknown remotes get no delay). */
  links: WanLinks
  /** Unreleased bytes per connection above which send() returns false (default max(1 MiB, 2 x bandwidth-delay)). */
  highWaterBytes?: number
  /** Clock in ms (default performance.now); injectable for tests. */
  now?: () => number
}

/**
 * The emulation for ONE node: wraps that node's connection encrypter so that every secured
 * connection gets the delay and uplink pacing of its region pair. Create one per node.
 */
export class WanEmulation implements LinkEmulation {
  readonly links: WanLinks
  private readonly now: () => number
  private readonly highWaterBytes?: number
  private localPeer?: string
  private uplink?: Pacer
  private readonly counters = {
    intra: 0,
    inter: 0,
    unknown: 0,
    byRegion: new Map<string, number>(),
    connections: 0,
    queued: 0,
  }

  constructor(init: WanEmulationInit) {
    this.links = parseWanLinks(init.links)
    this.now = init.now ?? (() => performance.now())
    this.highWaterBytes = init.highWaterBytes
  }

  /** The region of `peerId`, or undefined when the links file does not list it. */
  regionOf(peerId: string): string | undefined {
    return this.links.peers?.[peerId]
  }

  /** Emulated RTT in ms between two listed peers, or undefined when either is unknown. */
  rttMs(a: string, b: string): number | undefined {
    const ra = this.regionOf(a)
    const rb = this.regionOf(b)
    return ra === undefined || rb === undefined ? undefined : regionRttMs(this.links, ra, rb)
  }

  /** Throughput in Mbit/s of one flow between two listed peers (Infinity: uncapped), or undefined when either is unknown. */
  throughputMbps(a: string, b: string): number | undefined {
    const ra = this.regionOf(a)
    const rb = this.regionOf(b)
    return ra === undefined || rb === undefined ? undefined : regionThroughputMbps(this.links, ra, rb)
  }

  /** Uplink rate of `peerId` in Mbit/s (its region's override, else the top-level rate). */
  uplinkMbps(peerId: string): number {
    const region = this.regionOf(peerId)
    return (
      (region !== undefined ? this.links.regions[region]?.uplinkMbps : undefined) ?? this.links.uplinkMbps
    )
  }

  /** Counters for /status: bytes sent within and across regions, open emulated connections. */
  stats(): WanStats {
    const c = this.counters
    return {
      region: this.localPeer !== undefined ? this.regionOf(this.localPeer) : undefined,
      bytesSentIntraRegion: c.intra,
      bytesSentInterRegion: c.inter,
      bytesSentUnknown: c.unknown,
      bytesSentByRegion: Object.fromEntries(c.byRegion),
      connections: c.connections,
      queuedBytes: c.queued,
    }
  }

  /** Wraps a connection-encrypter factory (e.g. `noise()`) for createLibp2p's `connectionEncrypters`. */
  encrypter<C extends EncrypterComponents, E>(
    factory: (components: C) => ConnectionEncrypter<E>,
  ): (components: C) => ConnectionEncrypter<E> {
    return (components: C) => {
      const inner = factory(components)
      const local = components.peerId.toString()
      const secure = async (
        op: 'secureInbound' | 'secureOutbound',
        connection: MessageStream,
        options?: SecureConnectionOptions,
      ): Promise<SecuredConnection<E>> => {
        const secured = await inner[op](connection, options)
        const wrapped = this.wrap(secured.connection, local, secured.remotePeer.toString())
        if (wrapped !== secured.connection) flushBeforeClose(connection, wrapped as EmulatedLinkStream)
        return { ...secured, connection: wrapped }
      }
      return {
        protocol: inner.protocol,
        secureInbound: (connection, options) => secure('secureInbound', connection, options),
        secureOutbound: (connection, options) => secure('secureOutbound', connection, options),
      }
    }
  }

  /**
   * Wraps a secured connection from `local` to `remote` in an emulated link; returns `connection`
   * itself when `local` is not in the links file (this node is not part of the emulation).
   */
  wrap(connection: MessageStream, local: string, remote: string): MessageStream {
    if (this.localPeer === undefined) this.localPeer = local
    if (this.localPeer !== local) {
      throw new WanEmulationSharedError(`this WanEmulation belongs to ${this.localPeer}, not ${local}`)
    }
    const localRegion = this.regionOf(local)
    if (localRegion === undefined) return connection
    const remoteRegion = this.regionOf(remote)
    const oneWayMs = remoteRegion === undefined ? 0 : regionRttMs(this.links, localRegion, remoteRegion) / 2
    const bytesPerMs = (this.uplinkMbps(local) * 1e6) / 8 / 1000
    this.uplink ??= new Pacer(bytesPerMs, this.now)
    const flowMbps =
      remoteRegion === undefined
        ? Number.POSITIVE_INFINITY
        : regionThroughputMbps(this.links, localRegion, remoteRegion)
    const flowBytesPerMs = (flowMbps * 1e6) / 8 / 1000
    const c = this.counters
    const stream = new EmulatedLinkStream(connection, {
      oneWayMs,
      uplink: this.uplink,
      ...(Number.isFinite(flowBytesPerMs) ? { flow: new Pacer(flowBytesPerMs, this.now) } : {}),
      highWaterBytes:
        this.highWaterBytes ??
        Math.max(MIN_HIGH_WATER_BYTES, 2 * Math.min(bytesPerMs, flowBytesPerMs) * oneWayMs),
      now: this.now,
      onSend: (bytes) => {
        if (remoteRegion === undefined) c.unknown += bytes
        else if (remoteRegion === localRegion) c.intra += bytes
        else c.inter += bytes
        if (remoteRegion !== undefined)
          c.byRegion.set(remoteRegion, (c.byRegion.get(remoteRegion) ?? 0) + bytes)
      },
      onQueued: (delta) => {
        c.queued += delta
      },
    })
    c.connections++
    stream.addEventListener('close', () => {
      c.connections--
    })
    return stream
  }
}

/**
 * libp2p's Connection.close() closes the raw connection, not the secured one we return,
 * so data still held by the emulated link would be cut off: flush it first.
 */
function flushBeforeClose(raw: MessageStream, link: EmulatedLinkStream): void {
  const close = raw.close.bind(raw)
  raw.close = async (options?: AbortOptions) => {
    await link.flushed(options).catch(() => {})
    return close(options)
  }
}

/** Creates the emulation for one node; pass `.encrypter(noise())` to createLibp2p. */
export function wanEmulation(init: WanEmulationInit): WanEmulation {
  return new WanEmulation(init)
}

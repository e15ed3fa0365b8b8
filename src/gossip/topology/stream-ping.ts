/**
 * Pings on a kept stream. libp2p's `ping()` opens a stream for every ping and closes it: yamux
 * open, multistream-select, the echo, window updates and two FINs, 13 Noise frames a ping on a
 * testbed host (docs/BENCHMARKS.md, Scale, tenth session), where the ping itself is 32 bytes each
 * way. The ping spec lets the dialer send the next payload on the same stream and the listener
 * loops echoing, so this keeps one stream per peer and sends each ping on it. A listener may end
 * the stream whenever it likes (js-libp2p's after its handler timeout, 10 s by default): the next
 * ping opens a new one, and a ping that finds its kept stream dead is sent once more on a new one.
 */
import type { AbortOptions, Connection, PeerId, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { equals } from 'uint8arrays/equals'
import { NotStartedError } from '../errors.ts'

/** The ping protocol and its payload size (libp2p/specs ping.md). */
export const PING_PROTOCOL = '/ipfs/ping/1.0.0'
export const PING_LENGTH = 32

/** The slice of a libp2p node the pinger needs. */
export interface StreamPingNode {
  getConnections(peer?: PeerId): Connection[]
}

/**
 * No open direct connection to the peer. Pings never dial: the keep-alive and the topology
 * service ping peers they are connected to, and a ping retried after a hang-up (its kept stream
 * closed with the connection) would otherwise dial the peer straight back.
 */
export class PingNotConnectedError extends Error {
  override name = 'PingNotConnectedError'
}

/** A ping whose echo did not match what was sent, or came unasked: the stream is dropped. */
export class PingMismatchError extends Error {
  override name = 'PingMismatchError'
}

/** A ping to this peer is already waiting for its echo (the topology service pings a peer once at a time). */
export class PingBusyError extends Error {
  override name = 'PingBusyError'
}

/** The kept stream closed or reset before the echo came back. */
export class PingStreamClosedError extends Error {
  override name = 'PingStreamClosedError'
}

interface Pending {
  sent: Uint8Array
  received: Uint8ArrayList
  start: number
  resolve(rtt: number): void
  reject(err: Error): void
}

interface Kept {
  stream: Stream
  pending?: Pending
}

/** One kept ping stream per peer; `ping` is the drop-in for libp2p ping's (one ping per peer at a time). */
export class StreamPinger {
  private readonly streams = new Map<string, Kept>()
  private stopped = false
  /** Streams opened, for tests and /status: a kept stream opens once for many pings. */
  opened = 0

  constructor(
    private readonly node: StreamPingNode,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Round-trip time to `peer` in ms; rejects on abort, a dead stream (after one retry) or a mismatch. */
  async ping(peer: PeerId, options: AbortOptions = {}): Promise<number> {
    if (this.stopped) throw new NotStartedError('the pinger is stopped')
    const id = peer.toString()
    const reused = this.streams.has(id)
    try {
      return await this.once(peer, id, options)
    } catch (err) {
      // A kept stream the listener ended while idle: not a sign about the peer. One more try, fresh.
      if (reused && err instanceof PingStreamClosedError && options.signal?.aborted !== true) {
        return this.once(peer, id, options)
      }
      throw err
    }
  }

  /** Closes every kept stream; later pings reject. */
  stop(): void {
    this.stopped = true
    for (const id of [...this.streams.keys()]) this.drop(id, new PingStreamClosedError('pinger stopped'))
  }

  /** Kept streams (one per peer pinged and still open). */
  get size(): number {
    return this.streams.size
  }

  private async once(peer: PeerId, id: string, options: AbortOptions): Promise<number> {
    const kept = this.streams.get(id) ?? (await this.open(peer, id, options))
    if (kept.pending !== undefined) throw new PingBusyError(`a ping to ${id} is already in flight`)
    const sent = crypto.getRandomValues(new Uint8Array(PING_LENGTH))
    const echo = new Promise<number>((resolve, reject) => {
      kept.pending = { sent, received: new Uint8ArrayList(), start: this.now(), resolve, reject }
    })
    // Awaited below on every path; this keeps a rejection after an early throw from going unhandled.
    echo.catch(() => {})
    const onAbort = (): void => {
      // A late echo would be taken for the next ping's: the stream goes with the ping.
      const reason = options.signal?.reason
      this.drop(id, reason instanceof Error ? reason : new Error('ping aborted'))
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      if (options.signal?.aborted === true) onAbort()
      else {
        try {
          kept.stream.send(sent)
        } catch (err) {
          // A kept stream already closing: it goes, and ping() retries once on a fresh one.
          const why = err instanceof Error ? err.message : String(err)
          this.drop(id, new PingStreamClosedError(`ping stream to ${id} not writable: ${why}`), kept)
        }
      }
      return await echo
    } finally {
      options.signal?.removeEventListener('abort', onAbort)
    }
  }

  private async open(peer: PeerId, id: string, options: AbortOptions): Promise<Kept> {
    const connection = this.node.getConnections(peer).find((c) => c.status === 'open' && c.limits == null)
    if (connection === undefined) throw new PingNotConnectedError(`no open direct connection to ${id}`)
    const stream = await connection.newStream(PING_PROTOCOL, options)
    this.opened++
    // stop() or another ping's open may have won the race while we dialled.
    const other = this.streams.get(id)
    if (this.stopped || other !== undefined) {
      stream.abort(new PingStreamClosedError('not needed'))
      if (other !== undefined) return other
      throw new NotStartedError('the pinger is stopped')
    }
    const kept: Kept = { stream }
    this.streams.set(id, kept)
    stream.addEventListener('message', (evt) => {
      const p = kept.pending
      if (p === undefined) {
        this.drop(id, new PingMismatchError(`unasked bytes on the ping stream of ${id}`), kept)
        return
      }
      p.received.append(evt.data)
      if (p.received.byteLength < PING_LENGTH) return
      const rtt = this.now() - p.start
      if (p.received.byteLength > PING_LENGTH || !equals(p.received.subarray(), p.sent)) {
        this.drop(id, new PingMismatchError(`ping echo from ${id} does not match`), kept)
        return
      }
      kept.pending = undefined
      p.resolve(rtt)
    })
    stream.addEventListener('close', () => {
      this.drop(id, new PingStreamClosedError(`ping stream to ${id} closed`), kept)
    })
    return kept
  }

  /** Forgets `id`'s stream (only `which`, if given: a newer one stays), aborts it and fails its ping. */
  private drop(id: string, err: Error, which?: Kept): void {
    const kept = this.streams.get(id)
    if (kept === undefined || (which !== undefined && kept !== which)) {
      which?.pending?.reject(err)
      if (which !== undefined) which.pending = undefined
      return
    }
    this.streams.delete(id)
    const p = kept.pending
    kept.pending = undefined
    p?.reject(err)
    if (kept.stream.status === 'open') kept.stream.abort(err)
  }
}

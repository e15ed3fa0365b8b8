/**
 * Finds connections that carry no gossipsub, and mends them. A connection is of use to the
 * membership only once we hold an outbound gossipsub stream on it: that is how our subscription,
 * GRAFTs and announcements reach the peer. Two steps of libp2p can leave one open without it, and
 * neither is retried:
 *  - identify runs once, when the connection opens, and libp2p tells gossipsub of a peer only when
 *    identify completes (either side's success is enough: gossipsub answers a peer's inbound
 *    stream with its own);
 *  - gossipsub opens its outbound stream once, and a failure is only logged; a stream that closes
 *    later is not reopened.
 * Such a connection stays open, kept alive by pings, and silent. A node whose only connection is
 * one hears no announcement, so its view stays empty and it never pushes, and nothing else
 * notices: the re-dialler waits for a node with no connection at all.
 *
 * Each round, a direct connection open longer than `graceMs` to a peer without an outbound
 * gossipsub stream gets identify again when the peer was never identified (bounded by
 * `timeoutMs`, aborted after `maxAttempts` failures). When the peer was identified, speaks
 * gossipsub, and still has no stream `graceMs` later, the connection is aborted, so the peer,
 * or our re-dialler when it was the last one, makes a fresh one.
 */

import type { AbortOptions, Connection, IdentifyResult, PeerId } from '@libp2p/interface'
import { anyWithTimeoutAfterReads, release } from '../util/abort.ts'
import { InvalidArgumentError } from '../util/errors.ts'

/** The slice of a libp2p node the watch needs. */
export interface LinkWatchNode {
  getConnections(): Connection[]
  addEventListener(type: 'peer:identify', listener: (evt: CustomEvent<IdentifyResult>) => void): void
  addEventListener(type: 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
  removeEventListener(type: 'peer:identify', listener: (evt: CustomEvent<IdentifyResult>) => void): void
  removeEventListener(type: 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
}

export interface LinkWatchInit {
  /** The pubsub's protocols (gossipsub's `protocols`): a stream of one of them carries it. */
  protocols: readonly string[]
  /** How often connections are checked. */
  checkEveryMs: number
  /** How long a connection may go without a gossipsub stream before the watch acts: more than identify's bound. */
  graceMs: number
  /** Bound on one identify retry. */
  timeoutMs: number
  /** Failed identify retries on one connection before it is aborted. */
  maxAttempts: number
  /** Runs identify on a connection (libp2p's `services.identify.identify`). */
  identify(connection: Connection, options: AbortOptions): Promise<unknown>
  now?: () => number
}

/** The daemon's cadence: check every 10 s, abort after 3 failed retries (grace and bound follow identify's own timeout). */
export const LINK_WATCH_INIT = { checkEveryMs: 10_000, maxAttempts: 3 } as const

/** Thrown into a connection that carries no gossipsub and could not be mended. */
export class SilentLinkError extends Error {
  override name = 'SilentLinkError'
}

export class LinkWatch {
  /**
   * Identify retried on connections it never completed on, those that completed and failed;
   * connections found without a gossipsub stream though identified; connections aborted.
   */
  readonly counters = {
    identifyRetries: 0,
    identifyRecovered: 0,
    identifyFailures: 0,
    streamless: 0,
    aborted: 0,
  }
  /** Protocols of each peer identified since it connected. */
  private readonly identified = new Map<string, readonly string[]>()
  /** By connection id: failed identify retries, and when it was first found identified but streamless. */
  private readonly attempts = new Map<string, number>()
  private readonly streamlessSince = new Map<string, number>()
  private readonly inFlight = new Set<string>()
  private timer: ReturnType<typeof setInterval> | undefined
  private controller = new AbortController()
  private readonly now: () => number

  constructor(
    private readonly node: LinkWatchNode,
    private readonly init: LinkWatchInit,
  ) {
    if (!(init.checkEveryMs > 0 && init.graceMs >= 0 && init.timeoutMs > 0 && init.maxAttempts >= 1)) {
      throw new InvalidArgumentError('link watch: periods must be positive and maxAttempts at least 1')
    }
    this.now = init.now ?? Date.now
  }

  /** Attach before the node dials anyone, or a peer identified earlier gets one needless retry. */
  start(): void {
    if (this.timer !== undefined) return
    this.controller = new AbortController()
    this.node.addEventListener('peer:identify', this.onIdentify)
    this.node.addEventListener('peer:disconnect', this.onDisconnect)
    this.timer = setInterval(() => void this.round(), this.init.checkEveryMs)
    this.timer.unref?.()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    this.controller.abort()
    this.node.removeEventListener('peer:identify', this.onIdentify)
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    // Identify dispatches after an await: a connection closed meanwhile would leave a peer that is gone.
    if (evt.detail.connection != null && evt.detail.connection.status !== 'open') return
    this.identified.set(evt.detail.peerId.toString(), evt.detail.protocols ?? [])
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.identified.delete(evt.detail.toString())
  }

  /** One check of every open direct connection. */
  async round(): Promise<void> {
    const now = this.now()
    const open = this.node.getConnections().filter((c) => c.status === 'open' && c.limits == null)
    const live = new Set(open.map((c) => c.id))
    for (const m of [this.attempts, this.streamlessSince])
      for (const id of m.keys()) if (!live.has(id)) m.delete(id)
    // A peer is served when any of our connections to it holds our outbound gossipsub stream.
    const served = new Set(
      open
        .filter((c) =>
          c.streams.some((s) => s.direction === 'outbound' && this.init.protocols.includes(s.protocol ?? '')),
        )
        .map((c) => c.remotePeer.toString()),
    )
    const retries: Array<Promise<void>> = []
    for (const c of open) {
      const peer = c.remotePeer.toString()
      if (served.has(peer)) {
        this.streamlessSince.delete(c.id)
        continue
      }
      if (now - c.timeline.open < this.init.graceMs || this.inFlight.has(c.id)) continue
      const protocols = this.identified.get(peer)
      if (protocols === undefined) {
        retries.push(this.retry(c))
        continue
      }
      // A peer without gossipsub (a relay, another application) is not ours to mend.
      if (!protocols.some((p) => this.init.protocols.includes(p))) continue
      const since = this.streamlessSince.get(c.id)
      if (since === undefined) {
        this.streamlessSince.set(c.id, now)
        this.counters.streamless++
      } else if (now - since >= this.init.graceMs) {
        this.abort(
          c,
          `no gossipsub stream to ${c.remotePeer} ${Math.round((now - c.timeline.open) / 1000)} s after it connected`,
        )
      }
    }
    await Promise.all(retries)
  }

  private async retry(c: Connection): Promise<void> {
    const stopped = this.controller.signal
    this.inFlight.add(c.id)
    this.counters.identifyRetries++
    // After a stall of our own loop, read the answer that came during it before giving up.
    const signal = anyWithTimeoutAfterReads([stopped], this.init.timeoutMs)
    try {
      await this.init.identify(c, { signal })
      this.counters.identifyRecovered++
      this.attempts.delete(c.id)
    } catch (err) {
      if (stopped.aborted) return
      this.counters.identifyFailures++
      const n = (this.attempts.get(c.id) ?? 0) + 1
      this.attempts.set(c.id, n)
      if (n >= this.init.maxAttempts) {
        this.abort(
          c,
          `identify with ${c.remotePeer} failed ${n} times: ${err instanceof Error ? err.message : String(err)}`,
        )
      }
    } finally {
      release(signal)
      this.inFlight.delete(c.id)
    }
  }

  private abort(c: Connection, why: string): void {
    this.attempts.delete(c.id)
    this.streamlessSince.delete(c.id)
    if (c.status !== 'open') return
    c.abort(new SilentLinkError(why))
    this.counters.aborted++
  }
}

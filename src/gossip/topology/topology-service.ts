/**
 * Link measurement for topology-aware sampling: every tick, ping a few connected peers
 * (least recently pinged first, so all are covered round-robin), keep a smoothed RTT per
 * peer and move our Vivaldi coordinate with each sample against the coordinate the peer
 * announced. Announcing our coordinate is the membership's job (`describe()`).
 */

import type { AbortOptions, ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import { anyWithTimeout, release } from '../../util/abort.ts'
import { InvalidArgumentError } from '../../util/errors.ts'
import { type ConnectionView, relayedOnlyPeers } from '../connectivity.ts'
import { toError } from '../errors.ts'
import { RttTracker } from './rtt.ts'
import { type Coordinate, VivaldiClient } from './vivaldi.ts'

/** Defaults and the reason for each. */
export const TOPOLOGY_DEFAULTS = {
  /** Same period as membership announcements: RTTs change slowly; pings are cheap but not free on a busy peer. */
  intervalMs: 2000,
  /** 4 per 2 s covers an 11-peer view every ~6 s and feeds Vivaldi 2 samples/s. */
  pingsPerTick: 4,
  /** libp2p ping's own default is 10 s; a peer silent for 5 s is unresponsive for gossip purposes. */
  pingTimeoutMs: 5000,
  /** Three failed pings in a row (about 3 rounds) mark a peer unreachable; one may be a GC pause. */
  maxConsecutiveFailures: 3,
  /**
   * A ping's stream closes a moment after ping() resolves (the remote's FIN trails the pong), and
   * libp2p allows 1 outbound / 2 inbound ping streams per connection: re-pinging a peer at once is
   * refused. 500 ms covers the trailing FIN on any emulated link (one-way <= 110 ms) with room for a busy loop.
   */
  peerCooldownMs: 500,
} as const

/** The slice of a libp2p node the service uses (a `Libp2p<NodeServices>` fits; tests pass a fake). */
export interface TopologyNode {
  services: { ping: { ping(peer: PeerId, options?: AbortOptions): Promise<number> } }
  getPeers(): PeerId[]
  /** Open connections, to leave out peers reached only through a relay; all peers are pinged without it. */
  getConnections?(): ConnectionView[]
  addEventListener(type: 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
  removeEventListener(type: 'peer:disconnect', listener: (evt: CustomEvent<PeerId>) => void): void
}

export interface TopologyComponents {
  node: TopologyNode
  logger: ComponentLogger
}

export interface TopologyInit {
  /** The coordinate `peerId` announced (from the membership view); undefined when unknown. */
  getRemoteCoordinate: (peerId: string) => Coordinate | undefined
  /** Tick period in ms (default 2000). */
  intervalMs?: number
  /** Peers pinged per tick (default 4). */
  pingsPerTick?: number
  /** Deadline of one ping in ms (default 5000). */
  pingTimeoutMs?: number
  /** Consecutive failures after which `onUnreachable` fires (default 3). */
  maxConsecutiveFailures?: number
  /** Least time in ms between the end of one ping to a peer and the start of the next (default 500). */
  peerCooldownMs?: number
  /** How to ping (default the node's libp2p ping service; the daemon passes a StreamPinger's). */
  ping?: (peer: PeerId, options: AbortOptions) => Promise<number>
  /** Clock in ms (default Date.now). */
  now?: () => number
  /** Our coordinate; a fresh 2-D + height client by default. */
  vivaldi?: VivaldiClient
  /** Smoothed RTTs; a median-of-5 tracker by default. */
  rtt?: RttTracker
  /** Called after every accepted sample (e.g. to copy the smoothed RTT into the view). */
  onSample?: (peerId: string, rttMs: number, smoothedMs: number) => void
  /** Called once a peer failed `maxConsecutiveFailures` pings in a row (e.g. evict it from the view). */
  onUnreachable?: (peerId: string) => void
}

/** Counters for /status and metrics. */
export interface TopologyCounters {
  pingsSent: number
  pingsOk: number
  /** Pings that failed or timed out (not those cut short by stop()). */
  pingsFailed: number
  /** Pings refused locally because a previous ping to that peer was still open (not a failure). */
  pingsBusy: number
  /** Samples Vivaldi moved on. */
  coordinateUpdates: number
  /** Samples from peers that had announced no coordinate yet (RTT kept, Vivaldi not moved). */
  coordinatesMissing: number
  /** Samples whose remote coordinate (or RTT) was invalid. */
  samplesRejected: number
  /** Peers reported to `onUnreachable`. */
  unreachable: number
}

/** Pings connected peers round-robin, tracks smoothed RTTs and our Vivaldi coordinate. start()/stop() are idempotent. */
export class TopologyService {
  readonly vivaldi: VivaldiClient
  readonly rtt: RttTracker
  readonly counters: TopologyCounters = {
    pingsSent: 0,
    pingsOk: 0,
    pingsFailed: 0,
    pingsBusy: 0,
    coordinateUpdates: 0,
    coordinatesMissing: 0,
    samplesRejected: 0,
    unreachable: 0,
  }

  private readonly node: TopologyNode
  private readonly log: Logger
  private readonly init: TopologyInit
  private readonly intervalMs: number
  private readonly pingsPerTick: number
  private readonly pingTimeoutMs: number
  private readonly maxFailures: number
  private readonly peerCooldownMs: number
  private readonly now: () => number
  private readonly ping: (peer: PeerId, options: AbortOptions) => Promise<number>
  /** Round-robin clock: the sequence number of each peer's last ping. */
  private readonly lastPinged = new Map<string, number>()
  private readonly failures = new Map<string, number>()
  /** When each peer's last ping ended, for the cooldown. */
  private readonly lastDone = new Map<string, number>()
  private readonly inFlight = new Set<string>()
  private seq = 0
  private timer?: ReturnType<typeof setInterval>
  private controller?: AbortController

  constructor(components: TopologyComponents, init: TopologyInit) {
    const d = TOPOLOGY_DEFAULTS
    this.node = components.node
    this.log = components.logger.forComponent('gossip-learn:topology')
    this.init = init
    this.intervalMs = init.intervalMs ?? d.intervalMs
    this.pingsPerTick = init.pingsPerTick ?? d.pingsPerTick
    this.pingTimeoutMs = init.pingTimeoutMs ?? d.pingTimeoutMs
    this.maxFailures = init.maxConsecutiveFailures ?? d.maxConsecutiveFailures
    this.peerCooldownMs = init.peerCooldownMs ?? d.peerCooldownMs
    this.now = init.now ?? Date.now
    this.ping = init.ping ?? ((peer, options) => this.node.services.ping.ping(peer, options))
    if (!(this.intervalMs > 0))
      throw new InvalidArgumentError(`intervalMs must be positive, got ${this.intervalMs}`)
    if (!Number.isInteger(this.pingsPerTick) || this.pingsPerTick < 1) {
      throw new InvalidArgumentError(`pingsPerTick must be a positive integer, got ${this.pingsPerTick}`)
    }
    if (!(this.pingTimeoutMs > 0)) throw new InvalidArgumentError(`pingTimeoutMs must be positive`)
    if (!(this.peerCooldownMs >= 0)) throw new InvalidArgumentError('peerCooldownMs must be >= 0')
    if (!Number.isInteger(this.maxFailures) || this.maxFailures < 1) {
      throw new InvalidArgumentError(
        `maxConsecutiveFailures must be a positive integer, got ${this.maxFailures}`,
      )
    }
    this.vivaldi = init.vivaldi ?? new VivaldiClient()
    this.rtt = init.rtt ?? new RttTracker()
  }

  /** Starts the periodic pings (first tick now). */
  start(): void {
    if (this.timer !== undefined) return
    this.controller = new AbortController()
    this.node.addEventListener('peer:disconnect', this.onDisconnect)
    this.timer = setInterval(() => void this.tick(), this.intervalMs)
    void this.tick()
  }

  /** Stops pinging and aborts pings in flight; measurements are kept. */
  stop(): void {
    if (this.timer === undefined) return
    clearInterval(this.timer)
    this.timer = undefined
    this.controller?.abort()
    this.controller = undefined
    this.node.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  /** Our current coordinate (what to announce). */
  coordinate(): Coordinate {
    return this.vivaldi.coordinate
  }

  /** Smoothed (median) RTT to `peerId` in ms, or undefined before its first sample. */
  rttMs(peerId: string): number | undefined {
    return this.rtt.get(peerId)
  }

  /** Vivaldi-predicted RTT in ms to a peer that announced `remote`; undefined when it is invalid. */
  predictRttMs(remote: Coordinate | undefined): number | undefined {
    if (remote === undefined) return undefined
    try {
      return this.vivaldi.distanceTo(remote)
    } catch {
      return undefined
    }
  }

  /**
   * One round: pings up to `pingsPerTick` connected peers, least recently pinged first,
   * and resolves with the number of samples taken. Never throws.
   */
  async tick(options: AbortOptions = {}): Promise<number> {
    const root = this.controller?.signal
    const peers = new Map<string, PeerId>()
    const cooledBefore = this.now() - this.peerCooldownMs
    // Not a peer reached only through a relay: its RTT is the relay's detour, not the link a model
    // would take, and libp2p's ping would dial a new relayed connection each time (it skips limited ones).
    const relayed = relayedOnlyPeers(this.node.getConnections?.() ?? [])
    const connected = this.node.getPeers()
    this.forgetGone(connected)
    for (const p of connected) {
      const id = p.toString()
      if (relayed.has(id)) continue
      if (this.inFlight.has(id) || (this.lastDone.get(id) ?? Number.NEGATIVE_INFINITY) > cooledBefore)
        continue
      peers.set(id, p)
    }
    const chosen = [...peers.keys()]
      .sort((a, b) => (this.lastPinged.get(a) ?? -1) - (this.lastPinged.get(b) ?? -1) || (a < b ? -1 : 1))
      .slice(0, this.pingsPerTick)
    const results = await Promise.all(
      chosen.map((id) => {
        this.lastPinged.set(id, this.seq++)
        return this.probe(peers.get(id)!, [root, options.signal])
      }),
    )
    return results.filter(Boolean).length
  }

  /** Forgets a peer's measurements (it disconnected). */
  forget(peerId: string): void {
    this.rtt.forget(peerId)
    this.vivaldi.forget(peerId)
    this.lastPinged.delete(peerId)
    this.lastDone.delete(peerId)
    this.failures.delete(peerId)
  }

  /**
   * Forgets peers no longer connected: a ping that ends after its peer's disconnect event
   * records the peer again, and nothing else would drop it (a slow leak under churn).
   */
  private forgetGone(connected: readonly PeerId[]): void {
    const ids = new Set(connected.map((p) => p.toString()))
    for (const id of new Set([...this.lastDone.keys(), ...this.failures.keys()]))
      if (!ids.has(id) && !this.inFlight.has(id)) this.forget(id)
  }

  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.forget(evt.detail.toString())
  }

  /** Pings one peer and feeds the sample in; true when a sample was taken. */
  private async probe(peer: PeerId, signals: Array<AbortSignal | undefined>): Promise<boolean> {
    const id = peer.toString()
    const stopSignals = signals.filter((s): s is AbortSignal => s !== undefined)
    const signal = anyWithTimeout(stopSignals, this.pingTimeoutMs)
    this.inFlight.add(id)
    this.counters.pingsSent++
    let ms: number
    try {
      ms = await this.ping(peer, { signal })
    } catch (err) {
      // Cut short by stop() or the caller: says nothing about the peer.
      if (stopSignals.some((s) => s.aborted)) return false
      const e = toError(err)
      // Our own per-connection ping stream limit: a local race, not the peer's fault.
      if (e.name === 'TooManyOutboundProtocolStreamsError' || e.name === 'PingBusyError') {
        this.counters.pingsBusy++
        return false
      }
      // The connection closed since the peer was chosen (pings never dial): not unreachable.
      if (e.name === 'PingNotConnectedError') return false
      this.onFailure(id, e)
      return false
    } finally {
      release(signal)
      this.inFlight.delete(id)
      this.lastDone.set(id, this.now())
    }
    this.counters.pingsOk++
    this.failures.delete(id)
    let smoothed: number
    try {
      smoothed = this.rtt.record(id, ms)
    } catch (err) {
      this.counters.samplesRejected++
      this.log('discarded ping sample from %s: %s', id, toError(err).message)
      return false
    }
    const remote = this.init.getRemoteCoordinate(id)
    if (remote === undefined) {
      this.counters.coordinatesMissing++
    } else {
      try {
        this.vivaldi.update(remote, ms, { peerId: id })
        this.counters.coordinateUpdates++
      } catch (err) {
        this.counters.samplesRejected++
        this.log('coordinate of %s not usable: %s', id, toError(err).message)
      }
    }
    this.init.onSample?.(id, ms, smoothed)
    return true
  }

  private onFailure(id: string, err: Error): void {
    this.counters.pingsFailed++
    const n = (this.failures.get(id) ?? 0) + 1
    this.log('ping to %s failed (%d in a row): %s', id, n, err.message)
    if (n < this.maxFailures) {
      this.failures.set(id, n)
      return
    }
    this.failures.delete(id)
    this.counters.unreachable++
    this.init.onUnreachable?.(id)
  }
}

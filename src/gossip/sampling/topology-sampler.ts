/**
 * Topology-aware peer sampling: mostly near peers by (measured or predicted) RTT, plus a
 * share of uniform picks so models still mix across regions.
 *
 * Rule, per picked slot (without replacement):
 * - with probability `randomShare`, a uniform pick among the remaining fresh peers;
 * - otherwise a "near" pick among the remaining peers whose RTT is known, with weight
 *   1 / max(rtt, minRttMs)^exponent; if none is known, a uniform pick.
 * RTT is the peer's measured smoothed `rttMs` when set, else the Vivaldi distance between
 * our coordinate and its announced one, else unknown. A peer whose `lastSeen` is older than
 * its entry's `ttlMs`, or `maxAgeMs` when that is longer or the entry has none, is never picked.
 */

import { InvalidArgumentError } from '../../util/errors.ts'
import { type Coordinate, distance, isValidCoordinate } from '../topology/vivaldi.ts'
import type { PeerEntry, PeerSampler } from './sampler.ts'

/** Defaults and the reason for each. */
export const TOPOLOGY_SAMPLER_DEFAULTS = {
  /**
   * bench:topology, 12 peers at 2 steps/s (docs/BENCHMARKS.md): 0.1 sent 2.6-3.1x fewer bytes across
   * regions than uniform in three runs, 0.25 2.2x in one, both with the same time-averaged accuracy.
   */
  randomShare: 0.1,
  /** 1/rtt^2: in the default 3-region topology 97-99% of near picks stay in-region; 1/rtt leaks ~20%. */
  exponent: 2,
  /** Loopback and same-host RTTs are ~0.1 ms: a floor stops one such peer from taking every near pick. */
  minRttMs: 1,
  /**
   * A few missed announcements (seconds apart) mark a peer dead; the issue wants dead peers out
   * within seconds. An entry's own `ttlMs` extends it: membership announces every 500 ms per peer
   * (5.5 s at 12 peers, 60 s from 120), and a fixed 10 s left out in-region peers between two of
   * their announcements (bench:topology: 8 of one peer's 14 pushes crossed regions at random share 0.1).
   */
  maxAgeMs: 10_000,
} as const

export interface TopologySamplerInit {
  /** Our current coordinate (e.g. `() => vivaldi.coordinate`); undefined disables predictions. */
  localCoordinate: () => Coordinate | undefined
  /** Probability that a slot is a uniform pick, in [0, 1] (default 0.25). */
  randomShare?: number
  /** Near-pick weight is 1 / rtt^exponent, >= 0 (default 2; 0 makes near picks uniform over known peers). */
  exponent?: number
  /** RTT floor in ms for the weights (default 1). */
  minRttMs?: number
  /** Peers not seen for longer than this (or their entry's `ttlMs`, if longer) are excluded (default 10 000 ms). */
  maxAgeMs?: number
  /** Clock in ms, same base as PeerEntry.lastSeen (default Date.now). */
  now?: () => number
  /** Uniform [0, 1) source; injectable for seeded tests (default Math.random). */
  random?: () => number
}

/** PeerSampler that prefers near peers but keeps a configurable share of uniform random picks. */
export class TopologySampler implements PeerSampler {
  private readonly localCoordinate: () => Coordinate | undefined
  private readonly randomShare: number
  private readonly exponent: number
  private readonly minRttMs: number
  private readonly maxAgeMs: number
  private readonly now: () => number
  private readonly random: () => number

  constructor(init: TopologySamplerInit) {
    const d = TOPOLOGY_SAMPLER_DEFAULTS
    this.localCoordinate = init.localCoordinate
    this.randomShare = init.randomShare ?? d.randomShare
    this.exponent = init.exponent ?? d.exponent
    this.minRttMs = init.minRttMs ?? d.minRttMs
    this.maxAgeMs = init.maxAgeMs ?? d.maxAgeMs
    this.now = init.now ?? Date.now
    this.random = init.random ?? Math.random
    if (!(this.randomShare >= 0 && this.randomShare <= 1)) {
      throw new InvalidArgumentError(`randomShare must be in [0, 1], got ${this.randomShare}`)
    }
    if (!(this.exponent >= 0 && Number.isFinite(this.exponent))) {
      throw new InvalidArgumentError(`exponent must be a finite number >= 0, got ${this.exponent}`)
    }
    if (!(this.minRttMs > 0 && Number.isFinite(this.minRttMs))) {
      throw new InvalidArgumentError(`minRttMs must be positive, got ${this.minRttMs}`)
    }
    if (!(this.maxAgeMs >= 0)) throw new InvalidArgumentError(`maxAgeMs must be >= 0, got ${this.maxAgeMs}`)
  }

  /** Best RTT estimate in ms for `peer`: measured, else Vivaldi-predicted, else undefined. */
  estimateRtt(peer: PeerEntry, local: Coordinate | undefined = this.safeLocal()): number | undefined {
    const measured = measuredRtt(peer)
    if (measured !== undefined) return measured
    if (local === undefined || !isValidCoordinate(peer.coordinate, local.vec.length)) return undefined
    return distance(local, peer.coordinate)
  }

  /** Fresh peers of `view`, one entry per peerId (the most recently seen). */
  freshPeers(view: readonly PeerEntry[]): PeerEntry[] {
    const now = this.now()
    const byId = new Map<string, PeerEntry>()
    for (const peer of view) {
      const maxAge = Math.max(this.maxAgeMs, peer.ttlMs ?? 0) // a NaN ttlMs gives NaN: dropped below
      if (!(now - peer.lastSeen <= maxAge)) continue // also drops a NaN lastSeen
      const known = byId.get(peer.peerId)
      if (known === undefined || peer.lastSeen > known.lastSeen) byId.set(peer.peerId, peer)
    }
    return [...byId.values()]
  }

  sample(view: readonly PeerEntry[], count: number): PeerEntry[] {
    const pool = this.freshPeers(view)
    const n = Math.min(Math.max(0, Math.floor(count)), pool.length)
    if (n === 0) return []
    const weights = this.nearWeights(pool)
    const picked: PeerEntry[] = []
    for (let slot = 0; slot < n; slot++) {
      const uniform = this.random() < this.randomShare
      let index = uniform ? -1 : this.weightedIndex(weights)
      if (index < 0) index = Math.floor(this.random() * pool.length)
      picked.push(pool[index]!)
      // Swap-remove keeps pool and weights aligned.
      const last = pool.length - 1
      pool[index] = pool[last]!
      weights[index] = weights[last]!
      pool.pop()
      weights.pop()
    }
    return picked
  }

  /**
   * Each fresh peer's chance of one pick: `randomShare` / n plus its part of the near picks. Only a
   * measured RTT earns a peer a near part: a peer whose RTT is predicted from the coordinate it
   * announces gets 1 / n, so announcing a coordinate next to ours buys a sender no larger fair
   * share of our merges (a ping's answer cannot come before the ping; a coordinate can lie).
   */
  shares(view: readonly PeerEntry[]): Map<string, number> {
    const pool = this.freshPeers(view)
    const out = new Map<string, number>()
    const n = pool.length
    if (n === 0) return out
    const weights = this.nearWeights(pool)
    const total = weights.reduce((a, w) => a + w, 0)
    pool.forEach((peer, i) => {
      const measured = measuredRtt(peer) !== undefined
      // With no weight at all, near picks fall back to uniform ones (sample).
      const near = total > 0 ? weights[i]! / total : 1 / n
      out.set(peer.peerId, measured ? this.randomShare / n + (1 - this.randomShare) * near : 1 / n)
    })
    return out
  }

  /** Near-pick weight of each peer: 1 / max(rtt, minRttMs)^exponent, 0 where the RTT is unknown. */
  private nearWeights(pool: readonly PeerEntry[]): number[] {
    const local = this.safeLocal()
    return pool.map((peer) => {
      const rtt = this.estimateRtt(peer, local)
      return rtt === undefined ? 0 : Math.max(rtt, this.minRttMs) ** -this.exponent
    })
  }

  /** Index drawn with probability ∝ weight, or -1 when no weight is positive. */
  private weightedIndex(weights: readonly number[]): number {
    let total = 0
    for (const w of weights) total += w
    if (!(total > 0)) return -1
    let r = this.random() * total
    let lastPositive = -1
    for (let i = 0; i < weights.length; i++) {
      if (weights[i]! <= 0) continue
      lastPositive = i
      r -= weights[i]!
      if (r < 0) return i
    }
    return lastPositive // rounding left r at ~0
  }

  /** Our coordinate, or undefined when the getter throws or returns garbage (then predictions are off). */
  private safeLocal(): Coordinate | undefined {
    try {
      const c = this.localCoordinate()
      return isValidCoordinate(c) ? c : undefined
    } catch {
      return undefined
    }
  }
}

/** The peer's measured RTT in ms, when it holds a usable one. */
function measuredRtt(peer: PeerEntry): number | undefined {
  const rtt = peer.rttMs
  return typeof rtt === 'number' && Number.isFinite(rtt) && rtt >= 0 ? rtt : undefined
}

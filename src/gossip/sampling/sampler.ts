/** Peer sampling: picks whom to push the model to from the live membership view. */
import type { Coordinate } from '../topology/coordinate.ts'

/** What a sampler knows of a live peer (from membership announcements and pings). */
export interface PeerEntry {
  /** libp2p peer id as string. */
  peerId: string
  /** Smoothed measured RTT in ms, when we have pinged it. */
  rttMs?: number
  /** Its announced Vivaldi coordinate, when it sends one. */
  coordinate?: Coordinate
  /** ms timestamp of the last sign of life (announcement, stream, ping). */
  lastSeen: number
  /**
   * How long the entry stays live after `lastSeen`, when its source says (membership: three of
   * the peer's announcement periods, which grow with the network to 60 s).
   */
  ttlMs?: number
  /** It has merged no model since it started and says so (see ./hungry.ts); set only for a few minutes. */
  hungry?: boolean
  /** We hold a direct connection to it now (a push needs no new handshake). */
  connected?: boolean
}

export interface PeerSampler {
  /** Choose up to `count` distinct peers from `view` (never the local peer: the view excludes it). */
  sample(view: readonly PeerEntry[], count: number): PeerEntry[]
  /**
   * Each peer of `view` it may pick, with the chance that one pick lands on it. The learner's
   * defences read it as the share of its models a peer running the same sampler sends us (RTTs
   * are symmetric), so a near peer of the topology sampler is not refused for sending as its
   * sampler tells it to. Absent: every peer's share is 1 / view size.
   */
  shares?(view: readonly PeerEntry[]): Map<string, number> | undefined
}

/** Uniform random choice without replacement; `random` is injectable for seeded tests. */
export class UniformSampler implements PeerSampler {
  private readonly random: () => number

  constructor(init: { random?: () => number } = {}) {
    this.random = init.random ?? Math.random
  }

  sample(view: readonly PeerEntry[], count: number): PeerEntry[] {
    const pool = [...view]
    const n = Math.min(count, pool.length)
    // Partial Fisher-Yates: the first n slots end up a uniform sample.
    for (let i = 0; i < n; i++) {
      const j = i + Math.floor(this.random() * (pool.length - i))
      const tmp = pool[i]!
      pool[i] = pool[j]!
      pool[j] = tmp
    }
    return pool.slice(0, n)
  }
}

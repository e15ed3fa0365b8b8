/**
 * Hungry peers first: a node that has merged no model since it started says so in its
 * announcement (`hungry`), and with a boost above 1 (`--hungry-boost`, off by default) the first
 * slot of each push round is a weighted pick in which each such peer weighs `boost` and any other
 * peer 1 (the other slots are the base sampler's). Why: in the 128-peer testbed runs the peers
 * left without any model were the last daemons started on saturated hosts, whose own pushes all
 * failed, so neither their pushes nor their requests for a model back (which ride on a push) ever
 * reached anyone; at about 5 models per peer in 300 s, e^-5 x 128 is one such peer a run by chance
 * alone (docs/BENCHMARKS.md Scale). The flag travels on the announcements, which need no push of
 * the hungry node. Membership ends it a few minutes after a peer first said it was hungry
 * (DEFAULT_HUNGRY_WINDOW_MS), so a peer that claims it forever draws no more than others.
 *
 * While we are hungry ourselves and a push of ours has failed (learner.ts `stranded`), one slot
 * of each round goes to a peer we already hold a connection to. Our pushes ask for a model back
 * then (learner.ts `wantsModels`), and a push over a held connection needs no handshake, nor does
 * the reply, which comes back on it. In a 128-peer run on one core, the 4 peers left without a
 * model held 1-2 connections each (through which they heard the whole network) and every push
 * they made to a new peer failed in the Noise handshake (`dial:EncryptionFailedError`), as did the
 * others' pushes to them.
 */
import { InvalidArgumentError } from '../../util/errors.ts'
import type { PeerEntry, PeerSampler } from './sampler.ts'

/**
 * 1, off by default. At 4 (a lone hungry peer among 127 then gets about 5 times a sated peer's
 * pushes) three 128-peer runs on 2 cores started up in 349-399 s against 286-308 s without the
 * boost, and one with only the stranded rule below in 298 s, which fed the last-started peers as
 * soon (docs/BENCHMARKS.md, Scale). `--hungry-boost` turns it on where joiners starve.
 */
export const DEFAULT_HUNGRY_BOOST = 1

export interface HungrySamplerInit {
  /** A hungry peer's weight in the first slot's pick, another peer's being 1; 1 turns the boost off. */
  boost?: number
  random?: () => number
  /** Whether our pushes should go over held connections (learner.ts `stranded`); absent: never. */
  stranded?: () => boolean
}

/** See the module comment. Wraps the sampler that picks the other slots. */
export class HungrySampler implements PeerSampler {
  private readonly boost: number
  private readonly random: () => number
  private readonly stranded: () => boolean

  constructor(
    private readonly base: PeerSampler,
    init: HungrySamplerInit = {},
  ) {
    const boost = init.boost ?? DEFAULT_HUNGRY_BOOST
    if (!(Number.isFinite(boost) && boost >= 1)) {
      throw new InvalidArgumentError(`hungry boost must be a number >= 1, got ${boost}`)
    }
    this.boost = boost
    this.random = init.random ?? Math.random
    this.stranded = init.stranded ?? (() => false)
  }

  sample(view: readonly PeerEntry[], count: number): PeerEntry[] {
    if (count > 0 && this.stranded()) {
      const linked = view.filter((p) => p.connected === true)
      if (linked.length > 0) {
        const pick = this.pickOne(linked)
        return [pick, ...this.boosted(without(view, pick), count - 1)]
      }
    }
    return this.boosted(view, count)
  }

  /** The base's shares: the boost and the stranded slot are short-lived, for peers that have no model yet. */
  shares(view: readonly PeerEntry[]): Map<string, number> | undefined {
    return this.base.shares?.(view)
  }

  private pickOne(from: readonly PeerEntry[]): PeerEntry {
    return from[Math.floor(this.random() * from.length)] as PeerEntry
  }

  /** The base's sample, with one slot given to a hungry peer at the boosted odds. */
  private boosted(view: readonly PeerEntry[], count: number): PeerEntry[] {
    if (count <= 0 || this.boost === 1) return this.base.sample(view, count)
    const hungry = view.filter((p) => p.hungry === true)
    // None hungry, or all (a network starting): nothing to favour.
    if (hungry.length === 0 || hungry.length === view.length) return this.base.sample(view, count)
    // A weighted pick of the first slot: each hungry peer weighs `boost`, any other 1. Not
    // boost x hungry / view, which takes the slot every round once a quarter of the view is
    // hungry (a start-up: a third of the pushes of two 128-peer runs went to hungry peers).
    const weight = this.boost * hungry.length
    if (this.random() >= weight / (weight + view.length - hungry.length)) {
      return this.base.sample(view, count)
    }
    const pick = this.pickOne(hungry)
    return [pick, ...this.base.sample(without(view, pick), count - 1)]
  }
}

const without = (view: readonly PeerEntry[], pick: PeerEntry): PeerEntry[] => view.filter((p) => p !== pick)

/**
 * The learner's defences against hostile senders (issue 9), besides the robust merge steps:
 * a fair share of merges per sender, plausible ages, and the rollback to the last good model.
 * Each clip, rejection and drop is a verdict for the peer policy, counted by reason.
 */

import type { AgeClaimsInit } from './age-claims.ts'
import type { FairShareInit } from './fair-share.ts'
import type { LossWatchInit } from './loss-watch.ts'
import type { ShareWeightsInit } from './share-weight.ts'

export { AgeClaims, type AgeClaimsInit } from './age-claims.ts'
export {
  DEFAULT_AGE_BURST_S,
  DEFAULT_AGE_MIN_RATE,
  DEFAULT_AGE_RATE_FACTOR,
  DEFAULT_FAIR_SHARE_BURST,
  DEFAULT_FAIR_SHARE_MIN_RATE,
  DEFAULT_FAIR_SHARE_SLACK,
  DEFAULT_LOSS_EXPLODE_FACTOR,
  DEFAULT_LOSS_FLOOR,
  DEFAULT_LOSS_MIN_HISTORY,
  DEFAULT_LOSS_WINDOW,
  DEFAULT_SHARE_TOLERANCE,
  DEFAULT_SHARE_WINDOW_MS,
  DEFENCE_REASONS,
  MAX_PLAUSIBLE_AGE,
  MAX_TRACKED_SENDERS,
  OPTIONAL_DEFENCES,
  type OptionalDefence,
} from './constants.ts'
export { FairShare, type FairShareInit } from './fair-share.ts'
export { LossWatch, type LossWatchInit } from './loss-watch.ts'
export { SenderMap } from './sender-map.ts'
export { ShareWeights, type ShareWeightsInit } from './share-weight.ts'

/** Knobs of the learner's defences (defaults and reasons in ./constants.ts). */
export interface DefenceOptions {
  fairShare?: FairShareInit & {
    /** A sender may push `slack` times an honest peer's share (fanout / view size per our round). */
    slack?: number
    /** Lowest rate per sender (models/s). */
    minRatePerS?: number
    /** A fixed rate per sender (models/s) instead of the one derived from our own speed (tests, benches). */
    ratePerS?: number
  }
  age?: AgeClaimsInit & {
    /** Allowed growth: this many times our own samples per second... */
    rateFactor?: number
    /** ...and at least this many samples per second. */
    minRatePerS?: number
  }
  rollback?: LossWatchInit
  /** Share weighting of merge inputs; `false` turns it off. */
  share?: ShareWeightsInit | false
}

/** What the defences did, in the learner's stats and in /status. */
export interface DefenceCounters {
  /** Inputs whose update the merge clipped to its radius. */
  clipped: number
  /** Inputs whose claimed age the merge capped far below the claim, or whose sender was over its share. */
  downweighted: number
  /** Inputs refused: by the merge (outliers), the age check, or a rollback of their merge. */
  rejected: number
  /** Models dropped because their sender was over its fair share. */
  rateLimited: number
  /** Times the model was rolled back to the last good state. */
  rollbacks: number
  /** Suspect peers (the peer policy's) left out of a round's push targets, summed over rounds. */
  suspectsSkipped: number
  /** Each of the above by its stable reason (`distance-clipped`, `age-implausible`, `rate-limited`, ...). */
  byReason: Record<string, number>
}

/** Counters at zero: nothing done yet. */
export function emptyDefenceCounters(): DefenceCounters {
  return {
    clipped: 0,
    downweighted: 0,
    rejected: 0,
    rateLimited: 0,
    rollbacks: 0,
    suspectsSkipped: 0,
    byReason: {},
  }
}

/**
 * Peer-policy defaults, each with the reason for its value. Scores are plain numbers: a reject
 * costs 10, an accepted model earns 1. After Lodestar's peer scoring (`PeerRpcScoreStore`:
 * 10-minute half-life, -10 for a low-tolerance error, at most 1000 tracked peers).
 */

/** Every verdict the policy acts on: validation (accept, ignore, reject), merge robustness, pushes. */
export const POLICY_VERDICTS = [
  'accept',
  'ignore',
  'reject',
  'outlier',
  'far',
  'clip',
  'downweight',
  'push-failed',
] as const

/** What happened with one item from (or push to) a peer. */
export type PolicyVerdict = (typeof POLICY_VERDICTS)[number]

/**
 * Points per verdict.
 * - accept +1: an accepted model is a little evidence of honesty; capped by MAX_SCORE so credit
 *   cannot be banked against later attacks.
 * - reject -10: malformed, non-finite or mis-shaped data an honest peer running our code cannot
 *   produce (Lodestar's LowToleranceError); three in a few minutes ban a fresh peer.
 * - ignore -0.5: well-formed but unusable (another task, a stalled or cut transfer, we were busy);
 *   mostly not the peer's fault, so it only lowers the score down to SOFT_FLOOR.
 * - outlier -4: the merge's distance test refused a well-formed model as grossly far from ours
 *   (twice its rejection radius: a sign-flipped or scaled copy). An attacker sends nothing else
 *   and is banned after about 7; an honest peer's accepted models (+1) offset an occasional one
 *   (a 3-peer e2e banned its far, honest peer when outliers counted as rejects).
 * - far -1: refused as just beyond the radius. Honest peers land there in runs as a converging
 *   network shrinks the radius (src/merge/constants.ts, DEFAULT_GROSS_FACTOR), so it is soft: the
 *   model is refused, the peer is not banned for it.
 * - clip -1, downweight -0.5: the merge found the model an outlier; non-iid honest peers are
 *   outliers too, so these are soft as well.
 * - push-failed -1: our push to it failed (dial, reset, timeout): a bad link, not misbehaviour; soft.
 */
export const DEFAULT_WEIGHTS: Readonly<Record<PolicyVerdict, number>> = {
  accept: 1,
  ignore: -0.5,
  reject: -10,
  outlier: -4,
  far: -1,
  clip: -1,
  downweight: -0.5,
  'push-failed': -1,
}

/** Verdicts that may take a score below SOFT_FLOOR (and so to the ban threshold): rejects and outliers. */
export const HARD_VERDICTS: ReadonlySet<PolicyVerdict> = new Set(['reject', 'outlier'])

/**
 * A peer at or below this score is a suspect: with defences on we push it no models until its
 * score recovers. -4 is one gross outlier from a peer with no credit, or a run of soft verdicts
 * (four failed pushes, eight floods refused) with no accepted model in between; honest peers'
 * accepted models (+1 each) keep them above it. Why: every push to an attacker is one an honest
 * peer does not get; with 4 attackers of 13 the honest peers received 171 honest models in a
 * 150 s bench:byzantine sign-flip run against 269 without attackers, and ended 2.6 points lower;
 * with the rule 206-235 in three seeds (-1.6 points in their mean; docs/BENCHMARKS.md).
 */
export const DEFAULT_SUSPECT_SCORE = -4

/**
 * Scores halve every 10 minutes (Lodestar's SCORE_HALFLIFE_MS): three rejects within about five
 * minutes ban, the same three spread over an hour do not; a past ban's probation score (-6) is
 * forgotten after ~35 min.
 */
export const DEFAULT_HALF_LIFE_MS = 10 * 60_000

/** Credit cap: 10 accepted models. A long-honest peer that turns hostile is banned by its 4th reject. */
export const DEFAULT_MAX_SCORE = 10

/**
 * A peer whose score reaches this is banned. -25 is 2.5 rejects: three rejects ban a fresh peer
 * (-30 at once, -25.5 spread evenly over five minutes of decay); two never do. From the credit
 * cap it takes ceil((10 + 25) / 10) = 4 rejects: the bound on the frames a hostile peer gets
 * through before it is refused.
 */
export const DEFAULT_BAN_THRESHOLD = -25

/**
 * Soft verdicts (everything but reject) never take a score below this: noise alone (failed pushes
 * on a bad link, clipped outliers, a busy receiver) cannot ban a peer. At -6 a noisy peer is still
 * banned only by repeated rejects: one takes it to -16, two quick ones to -26 (a fresh peer needs three).
 */
export const DEFAULT_SOFT_FLOOR = -6

/**
 * How long a banned peer is refused (dials, inbound connections, view). 10 minutes: long enough
 * that a hostile peer costs us a few frames per 10 minutes at most, short enough that a peer
 * banned by a transient fault (a version skew, a bug fixed by a restart) comes back on its own.
 */
export const DEFAULT_COOLING_OFF_MS = 10 * 60_000

/** A peer banned again while its record lives is refused twice as long each time, up to a day. */
export const MAX_COOLING_OFF_MS = 24 * 60 * 60_000

/**
 * Peers tracked at once (Lodestar's MAX_ENTRIES). An entry is under 200 bytes; the cap keeps a
 * flood of identities (Sybils) from growing memory: beyond it the least recently seen unrefused
 * peer is forgotten, then the oldest ban.
 */
export const DEFAULT_MAX_PEERS = 1000

/** An unrefused entry whose score decayed below this is dropped: it no longer changes any decision. */
export const PRUNE_EPSILON = 0.5

/** Decayed entries are swept at most this often (an O(peers) pass), and whenever the cap is reached. */
export const PRUNE_INTERVAL_MS = 60_000

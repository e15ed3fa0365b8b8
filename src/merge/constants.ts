/**
 * Defaults of the robust merge steps (`clip`, `age-cap`), each with the reason for its value.
 * The rules follow ClippedGossip (He, Karimireddy, Jaggi, "Byzantine-Robust Decentralized
 * Learning via ClippedGossip", ICLR 2023: clip each neighbour's update `received - local`
 * around one's own model) and BALANCE (Fang et al., arXiv 2406.10416: accept a neighbour's
 * model only when its distance to one's own is within a multiple of one's own norm). Gossip has
 * no batch of neighbours per round, so the radius comes from a history of past distances.
 */

/**
 * `age-cap`: a received model's age is capped at this multiple of the local age before the
 * average, so its weight is at most this multiple of the local model's weight (at most 1/2 with
 * one input) and the merged age (the largest input age) never exceeds the local age: an age is a
 * claim, and a claim of 1e12 must not buy a weight of ~1 or spread through the network. 1 costs
 * nothing between peers of similar age (bench:merge: every peer has the same age) and lets a
 * young peer take half of an older model per merge.
 */
export const DEFAULT_AGE_WEIGHT_RATIO = 1

/**
 * `age-cap` caps every age above the local one, but reports a clip only when the claim exceeds
 * the cap by this factor: peers that train at different speeds routinely claim a little more
 * than we have; a claim four times ours is worth a (soft) word to the peer policy.
 */
export const AGE_CAP_REPORT_FACTOR = 4

/**
 * `clip`: distances kept per tensor (and overall) to set the radius. 32 accepted inputs are
 * 16-30 s of merges on the testbed: recent enough to follow training as peers converge, long
 * enough that a median over it moves only when most inputs move.
 */
export const DEFAULT_CLIP_WINDOW = 32

/**
 * `clip`: accepted inputs needed before the radius comes from the history. Until then
 * (warm-up: the first merges, when independently initialised peers are far apart) the bounds
 * are multiples of the local model's own norm (BALANCE).
 */
export const DEFAULT_CLIP_MIN_HISTORY = 4

/**
 * `clip`: each tensor of `received - local` is clipped to this multiple of the median of its
 * recent accepted distances (ClippedGossip's self-centred clipping with a radius from the
 * honest spread): honest inputs up to twice the typical distance pass unchanged; anything
 * farther moves the local model no more than a typical honest input would.
 */
export const DEFAULT_CLIP_FACTOR = 2

/**
 * `clip`: an input whose whole distance exceeds this multiple of the median recent distance is
 * rejected (BALANCE's accept/reject test), and reported as an outlier. 4 (twice the clip
 * radius): a sign-flipped (x -4) or scaled (x 50) copy of a converged model is 5 and 49 times
 * the local norm away, far beyond; honest peers, even on label-skewed shares, rarely exceed
 * four times the median (bench:merge counts them).
 */
export const DEFAULT_REJECT_FACTOR = 4

/**
 * `clip`, warm-up and anchor: a tensor's update is never larger than this multiple of the local
 * tensor's norm. Two independent initialisations of the same layer are ~1.4 norms apart, so 2
 * clips nothing between honest fresh peers, and keeps a history that attackers inflate slowly
 * from ever growing past it.
 */
export const DEFAULT_NORM_CLIP_RATIO = 2

/**
 * `clip`, warm-up and anchor: an input farther than this multiple of the local norm is
 * rejected whatever the history says. Two independent initialisations are ~1.4 norms apart and
 * a fresh peer joining a trained network (weights up to twice its own norm) ~2.2; a sign-flipped
 * copy (x -4) is ~5 norms away from the model it was made of and ~4.1 (sqrt 17) from an
 * independent one, so 3 refuses it from the first merge on, with room for honest spread.
 */
export const DEFAULT_NORM_REJECT_RATIO = 3

/**
 * `probe`: an input whose accuracy on the local probe batch is below this fraction of the median
 * of recently accepted inputs' is refused, and the refusal counts towards a ban (an `outlier` to
 * the peer policy). Honest models in a network that has learnt anything score near each other (a
 * label-skewed share pulls some lower); random weights score near chance (0.1 on ten classes), a
 * model trained on flipped labels below it, and sign-flipped (x -4) copies in the two-daemon e2e
 * mostly between a quarter and a half of the median: 0.4 leaves honest skew room and refuses them.
 * Early on, when the median itself is near chance, the bar is too and nothing is refused:
 * learning cannot stall on it.
 */
export const DEFAULT_PROBE_RATIO = 0.4

/**
 * `probe`: the bar is never below this fraction of the local model's own accuracy on the probe, so
 * that it holds during the warm-up and after a run of refusals dropped the history (when attackers
 * are most of the inputs): a random model scores about 1 / classes, an honest one trained with
 * the network far above a quarter of ours; early in training, ours is near chance and so is the bar.
 */
export const DEFAULT_PROBE_LOCAL_RATIO = 0.25

/** `probe`: accuracies of accepted inputs kept: 32 are 16-30 s of merges on the testbed (as `clip`'s window). */
export const DEFAULT_PROBE_WINDOW = 32

/** `probe`: accepted inputs before it refuses anything (the warm-up, and after a run of refusals). */
export const DEFAULT_PROBE_MIN_HISTORY = 8

/**
 * `clip`: a rejected input farther than this multiple of the rejection radius is a gross outlier
 * (reason `distance-gross`, which the peer policy counts towards a ban); one just beyond the radius
 * is an ordinary outlier, refused but soft to the policy. Honest peers land just beyond it: as a
 * network converges the median distance shrinks, and in a two-daemon run refusals of the honest
 * peer came in runs of 8 (until the history reset) every minute or so, each -4 to the sender's
 * score, enough to ban it. The attacks the radius exists for are far beyond: a sign-flipped (x -4)
 * copy is 5 local norms away, a scaled (x 50) one 49, against a radius of at most 3 norms.
 */
export const DEFAULT_GROSS_FACTOR = 2

/**
 * `clip`: after this many rejections in a row the history is dropped and the warm-up bounds
 * apply again. A run of rejections with no accepted input in between means our history no
 * longer describes the peers we hear from (we were cut off, or restarted far from them): an
 * attacker interleaved with honest peers never reaches it, since every accepted input resets
 * the count. 8 is a few seconds of merges.
 */
export const DEFAULT_REWARM_AFTER_REJECTS = 8

/** Stable reasons the robust steps give for a clip or a rejection (the peer policy and /status count them). */
export const MERGE_REASONS = {
  /** `clip` rejected the input: beyond the rejection radius, but within DEFAULT_GROSS_FACTOR of it. */
  distanceOutlier: 'distance-outlier',
  /** `clip` rejected the input: more than DEFAULT_GROSS_FACTOR times the rejection radius away. */
  distanceGross: 'distance-gross',
  /** `clip` scaled the input's update down to the radius. */
  distanceClipped: 'distance-clipped',
  /** `clip` found a non-finite distance (a value too large to square). */
  nonFiniteDistance: 'non-finite-distance',
  /** `probe` refused the input: its accuracy on the local probe batch is far below recent inputs'. */
  probeLow: 'probe-accuracy',
  /** `age-cap` capped an age far above the local one. */
  ageCapped: 'age-capped',
  /** `age-cap` found an age that is not a finite number >= 0. */
  invalidAge: 'age-invalid',
} as const

/**
 * Defaults of the learner's defences (issue 9), each with the reason for its value: the fair
 * share of merges per sender, the plausibility of claimed ages, and the rollback to the last
 * good model. The merge steps' own defaults (clipping, age cap) are in src/merge/constants.ts.
 */

/**
 * Fair share: a sender may place `slack` times the models an honest peer would push us. An
 * honest peer of our speed pushes `fanout` models per round to peers picked uniformly from a
 * view about as large as ours, so about `fanout / viewSize` per our round reach us (a sampler
 * that gives a peer more of its picks, the topology sampler a near one, says so: the learner's
 * `shareOf`, at least the uniform share); twice that
 * leaves room for sampling luck and faster peers, while a peer pushing us twice a second (issue
 * 9's attacker) gets no more than two honest peers' share of our merges instead of all of them.
 */
export const DEFAULT_FAIR_SHARE_SLACK = 2

/**
 * Fair share: tokens a sender starts with and can save up (a token bucket). 3 absorbs the
 * bunching of random sampling (three pushes in a row from one peer happen), not a flood.
 */
export const DEFAULT_FAIR_SHARE_BURST = 3

/**
 * Share weighting: models per sender are counted over this window. Honest senders' counts are
 * random (each push picks its targets at random), so in a short window they are small and noisy:
 * at 120 s the testbed's honest senders placed one or two models each (a round per 5-7 s, 11-15
 * senders: one model per 75 s from each), and an honest input weighed 0.73 on average with
 * nobody attacking (238 of 554 inputs down-weighted in a 240 s 12-peer run). Over 600 s the
 * counts are about 8, and with the tolerance below an honest input weighs 0.97 on average while
 * a sender pushing 4 times the honest rate (an attacker at its fair share) weighs 0.44, as it
 * did at 120 s (the arrival model in test/unit/gossip/defences/share-weight.test.ts).
 */
export const DEFAULT_SHARE_WINDOW_MS = 600_000

/**
 * Share weighting: a sender is down-weighted only beyond this multiple of the median sender's
 * count, so the luck of random sampling (an honest sender at 1.2 times the median) costs nothing.
 * In the arrival model above, 600 s alone gives honest inputs 0.89 and the 4x sender 0.35; with
 * 1.25, 0.97 and 0.44.
 */
export const DEFAULT_SHARE_TOLERANCE = 1.25

/**
 * Fair share: the lowest rate per sender (models per second), used before our own round rate is
 * known and on very slow nodes: one model per 30 s from each peer is always welcome.
 */
export const DEFAULT_FAIR_SHARE_MIN_RATE = 1 / 30

/**
 * Ages: a sender's claimed age may grow by at most this many times the samples per second we
 * train ourselves (a peer on tfjs-node or a faster machine trains several times faster than a
 * wasm node on a shared 2-core box; ten times is generous).
 */
export const DEFAULT_AGE_RATE_FACTOR = 10

/**
 * Ages: the lowest growth rate allowed (samples per second), before our own speed is known and
 * on slow nodes: a wasm MLP here trains 1,500 to 5,000 samples per second (README), so 10,000
 * is well above any honest peer of this code on this hardware.
 */
export const DEFAULT_AGE_MIN_RATE = 10_000

/**
 * Ages: on top of the rate, a claim may exceed the sender's last one by this many seconds of
 * growth at that rate (clock jitter, a burst of training while our event loop was busy, a
 * merge that took an older peer's age under the `varcorr` pipeline).
 */
export const DEFAULT_AGE_BURST_S = 60

/**
 * Ages: an age is a count of samples; above 2^53 a count is not exact any more, so no honest
 * peer claims it (and 1e308, the fuzz client's age, made weights sum to Infinity).
 */
export const MAX_PLAUSIBLE_AGE = Number.MAX_SAFE_INTEGER

/**
 * Rollback: a round whose training loss exceeds this many times the recent median (and the
 * floor below) after a merge is an explosion: the merge is undone. Honest merges between
 * independently initialised peers raise the loss of the next round by a fraction, not fourfold;
 * a scaled or sign-flipped model that got through raises it tenfold or more.
 */
export const DEFAULT_LOSS_EXPLODE_FACTOR = 4

/**
 * Rollback: the median is taken as at least this (cross-entropy, nats), so that a well-trained
 * model with a tiny loss does not roll back an honest merge that brings its loss to 0.3; four
 * times 0.5 is near chance level on 10 classes (ln 10 = 2.3).
 */
export const DEFAULT_LOSS_FLOOR = 0.5

/** Rollback: rounds whose losses make the median (16 rounds: a few seconds of training). */
export const DEFAULT_LOSS_WINDOW = 16

/** Rollback: rounds of loss history before a loss can count as exploded (only non-finite ones before). */
export const DEFAULT_LOSS_MIN_HISTORY = 4

/**
 * Senders whose rate and age the learner tracks at once; beyond it the least recently heard
 * from is forgotten (the peer policy's DEFAULT_MAX_PEERS: a flood of identities cannot grow
 * memory). A forgotten sender starts afresh, which the policy's ban outlives.
 */
export const MAX_TRACKED_SENDERS = 1000

/**
 * The learner's defences that can be switched off one at a time (`--no-defence NAME`), to measure
 * what each costs when nobody attacks: `share` (share weighting of merge inputs) and `suspects`
 * (no pushes to peers the policy suspects). The merge's robust steps are chosen with `--merge`.
 */
export const OPTIONAL_DEFENCES = ['share', 'suspects'] as const

/** One of {@link OPTIONAL_DEFENCES}. */
export type OptionalDefence = (typeof OPTIONAL_DEFENCES)[number]

/** Stable reasons of the learner's verdicts (the peer policy and /status count them). */
export const DEFENCE_REASONS = {
  /** A sender went over its fair share; the model was dropped. */
  rateLimited: 'rate-limited',
  /** A sender supplied more models than the median sender in the window; its input weighed less. */
  overShare: 'over-share',
  /** A claimed age grew faster than the sender can have trained. */
  ageImplausible: 'age-implausible',
  /** The round after a merge trained to an exploded loss: rolled back, the merge's inputs refused. */
  lossExploded: 'loss-exploded',
  /** The model became non-finite after a round: rolled back, the last merge's inputs refused. */
  nonFiniteModel: 'non-finite-model',
  /** A merge produced non-finite values: not applied, its inputs refused. */
  nonFiniteMerge: 'non-finite-merge',
} as const

/** Defaults of the attacker peers, each with the reason for its value. */

/**
 * Age an attacker claims in the age modes. 1e12 samples is what the measurements used:
 * finite (so it passes the codec), and age weights t_r / (t + t_r) give it practically all of a merge.
 */
export const INFLATED_AGE = 1e12

/** sign-flip: a received model times this. -4 took 8 honest peers from 0.910 to 0.433 (issue 9). */
export const SIGN_FLIP_FACTOR = -4

/** scale: a received model times this. x50 took 8 honest peers to chance (0.088) within 120 s (issue 9). */
export const SCALE_FACTOR = 50

/**
 * alie: mean minus z per-coordinate standard deviations. Baruch et al. (2019) pick the largest z
 * that keeps the crafted model inside the honest spread, z_max = inverse normal CDF of (n - s) / n
 * with s = floor(n / 2 + 1) - f: 0.49 for 4 attackers among 16 peers, 0.10 for 1 among 13. 1 is
 * more than either (a bigger shift), and still within one standard deviation.
 */
export const ALIE_Z = 1

/** alie: newest model per sender kept for the mean and spread; the honest peers of a small testbed. */
export const ALIE_WINDOW = 8

/**
 * An attacker pushes this often (ms). An honest testbed peer pushes once per round of 20 steps,
 * about every 0.4-0.5 s on the 2-core box (8 peers: 5205 steps in 120 s, README), so 500 ms is
 * an honest rate; lower it to attack faster.
 */
export const DEFAULT_ATTACK_INTERVAL_MS = 500

/** Peers pushed to per tick: the honest default fanout. */
export const DEFAULT_ATTACK_FANOUT = 1

/** Per-push deadline, the learner's own (a banned target's dial fails long before). */
export const ATTACK_PUSH_TIMEOUT_MS = 20_000

/** An attacker process prints a JSON status line this often (ms) for the testbed. */
export const ATTACK_STATUS_INTERVAL_MS = 1000

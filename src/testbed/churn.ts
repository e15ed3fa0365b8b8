/**
 * Churn and device speeds for the testbed: the `--churn` and `--train-rate` specs, and the
 * seeded choice of which peers an event hits.
 *
 * `--churn` is a comma list of events `ACTION:AMOUNT@TIME`, TIME in seconds after all peers are
 * up (`50` or `50s`):
 * - `kill:F@T`: SIGKILL a fraction F (0..1] of the peers running at T (at least one);
 * - `restart:F@T`: restart a fraction F of the peers killed so far, from their data dir (same
 *   identity, last checkpoint);
 * - `join:N@T`: start N new peers (late joiners, with their own data shares).
 * Example: `kill:0.3@50s,restart:0.5@80s,join:2@30s`.
 *
 * `--train-rate` is steps per second for every peer, optionally followed by
 * `straggler:F@R`: a fraction F of the peers (chosen from the seed) at R steps/s instead.
 * Examples: `20`, `20,straggler:0.25@5`.
 */
import { createRng, hashSeed } from '../util/rng.ts'

/** A `--churn` spec that cannot be parsed. */
export class InvalidChurnSpecError extends Error {
  static readonly name = 'InvalidChurnSpecError'
  override readonly name = 'InvalidChurnSpecError'
}

/** A `--train-rate` spec that cannot be parsed. */
export class InvalidTrainRateSpecError extends Error {
  static readonly name = 'InvalidTrainRateSpecError'
  override readonly name = 'InvalidTrainRateSpecError'
}

/** One churn event: `amount` is a fraction for kill/restart, a count for join. */
export interface ChurnEvent {
  action: 'kill' | 'restart' | 'join'
  amount: number
  /** Seconds after every initial peer is up. */
  atS: number
}

/** Most late joiners one event may start: the testbed's peer limit. */
const MAX_JOIN = 64

const EVENT_RE = /^(kill|restart|join):([0-9.]+)@([0-9.]+)s?$/

/** Parses a `--churn` spec into events sorted by time (stable for equal times). */
export function parseChurnSpec(spec: string): ChurnEvent[] {
  const parts = spec
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
  if (parts.length === 0) throw new InvalidChurnSpecError('empty churn spec')
  const events = parts.map((part): ChurnEvent => {
    const m = EVENT_RE.exec(part)
    if (m === null) throw new InvalidChurnSpecError(`'${part}' is not ACTION:AMOUNT@SECONDS`)
    const action = m[1] as ChurnEvent['action']
    const amount = Number(m[2])
    const atS = Number(m[3])
    if (!Number.isFinite(atS) || atS < 0) throw new InvalidChurnSpecError(`'${part}': bad time`)
    if (action === 'join') {
      if (!Number.isInteger(amount) || amount < 1 || amount > MAX_JOIN) {
        throw new InvalidChurnSpecError(`'${part}': join needs a count of 1 to ${MAX_JOIN}`)
      }
    } else if (!(amount > 0 && amount <= 1)) {
      throw new InvalidChurnSpecError(`'${part}': ${action} needs a fraction in (0, 1]`)
    }
    return { action, amount, atS }
  })
  return events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.atS - b.e.atS || a.i - b.i)
    .map(({ e }) => e)
}

/** Late joiners over all events: they take partition shares after the initial peers. */
export function joinCount(events: readonly ChurnEvent[]): number {
  return events.reduce((s, e) => s + (e.action === 'join' ? e.amount : 0), 0)
}

/**
 * The peers a kill/restart event hits: round(fraction x candidates), at least one when there
 * are any, chosen from `seed` and the event's position (the same run picks the same peers).
 */
export function pickPeers(
  candidates: readonly number[],
  fraction: number,
  seed: number,
  event: number,
): number[] {
  if (candidates.length === 0) return []
  const n = Math.min(candidates.length, Math.max(1, Math.round(fraction * candidates.length)))
  const sorted = [...candidates].sort((a, b) => a - b)
  return createRng(hashSeed(seed, 'churn', event))
    .shuffle(sorted)
    .slice(0, n)
    .sort((a, b) => a - b)
}

/** A parsed `--train-rate`: the rate of most peers and, optionally, a share of stragglers. */
export interface TrainRateSpec {
  rate: number
  straggler?: { fraction: number; rate: number }
}

const NUM = /^[0-9]*\.?[0-9]+$/

/** Parses `RATE` or `RATE,straggler:F@RATE` (steps per second). */
export function parseTrainRateSpec(spec: string): TrainRateSpec {
  const [head, ...rest] = spec.split(',').map((p) => p.trim())
  const rate = NUM.test(head ?? '') ? Number(head) : Number.NaN
  if (!(rate > 0)) throw new InvalidTrainRateSpecError(`'${head}' is not a positive steps-per-second rate`)
  if (rest.length === 0) return { rate }
  const m = rest.length === 1 ? /^straggler:([0-9.]+)@([0-9.]+)$/.exec(rest[0]!) : null
  if (m === null) throw new InvalidTrainRateSpecError(`'${rest.join(',')}' is not straggler:FRACTION@RATE`)
  const fraction = Number(m[1])
  const slow = Number(m[2])
  if (!(fraction > 0 && fraction <= 1)) {
    throw new InvalidTrainRateSpecError(`straggler fraction must be in (0, 1], got ${m[1]}`)
  }
  if (!(slow > 0)) throw new InvalidTrainRateSpecError(`straggler rate must be positive, got ${m[2]}`)
  return { rate, straggler: { fraction, rate: slow } }
}

/** Each peer's cap (index 0..peers-1): stragglers picked from `seed`, round(fraction x peers) of them. */
export function trainRates(spec: TrainRateSpec, peers: number, seed: number): number[] {
  const rates = Array.from({ length: peers }, () => spec.rate)
  if (spec.straggler === undefined || peers === 0) return rates
  const n = Math.round(spec.straggler.fraction * peers)
  const order = createRng(hashSeed(seed, 'stragglers')).shuffle(Array.from({ length: peers }, (_, i) => i))
  for (const i of order.slice(0, n)) rates[i] = spec.straggler.rate
  return rates
}

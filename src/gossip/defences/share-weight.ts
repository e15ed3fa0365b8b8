/**
 * Share weighting: a sender whose models enter our merge queue more often than `tolerance` times
 * the median sender's counts for less in each merge, by that over its own count in a sliding
 * window. The fair share bounds how often a sender can be merged; this bounds how much of our
 * model it supplies per unit time, so a peer that pushes as fast as the fair share allows (every
 * merge has its newest model) weighs no more over time than a typical sender. Down-weighting,
 * not refusing: a model inside the honest spread (alie) passes every per-model test, and an
 * honest burst only weighs a little less for a while.
 */

import { median } from '../../merge/steps/vector.ts'
import { InvalidArgumentError } from '../../util/errors.ts'
import { DEFAULT_SHARE_TOLERANCE, DEFAULT_SHARE_WINDOW_MS, MAX_TRACKED_SENDERS } from './constants.ts'
import { SenderMap } from './sender-map.ts'

export interface ShareWeightsInit {
  /** Models counted per sender over this much time (ms). */
  windowMs?: number
  /** Senders tracked at once. */
  maxSenders?: number
  /** A sender is down-weighted beyond this multiple of the median count (>= 1). */
  tolerance?: number
}

/** Arrival times per sender, and each sender's weight factor from them. */
export class ShareWeights {
  private readonly windowMs: number
  private readonly tolerance: number
  private readonly arrivals: SenderMap<number[]>

  constructor(init: ShareWeightsInit = {}) {
    this.windowMs = init.windowMs ?? DEFAULT_SHARE_WINDOW_MS
    if (!(this.windowMs > 0 && Number.isFinite(this.windowMs)))
      throw new InvalidArgumentError(`share window ${this.windowMs}`)
    this.tolerance = init.tolerance ?? DEFAULT_SHARE_TOLERANCE
    if (!(this.tolerance >= 1 && Number.isFinite(this.tolerance)))
      throw new InvalidArgumentError(`share tolerance ${this.tolerance}: a finite multiple >= 1`)
    this.arrivals = new SenderMap(init.maxSenders ?? MAX_TRACKED_SENDERS)
  }

  /** A model from `sender` entered the merge queue at `now` (ms). */
  record(sender: string, now: number): void {
    const times = this.recent(this.arrivals.get(sender) ?? [], now)
    times.push(now)
    this.arrivals.set(sender, times)
  }

  /**
   * `sender`'s weight factor at `now`: `tolerance` times the median count of models per sender
   * heard from in the window over its own count, at most 1 (1 for a sender with nothing in the
   * window). Each count is over its sender's expected share of our models (`shareOf`, any scale;
   * all equal by default), so a near peer that a topology-aware sampler sends more weighs as much
   * as a typical peer until it sends more than its share.
   */
  factor(sender: string, now: number, shareOf: (sender: string) => number = () => 1): number {
    const mine = this.recent(this.arrivals.get(sender) ?? [], now).length
    if (mine === 0) return 1
    const counts: number[] = []
    for (const [id, times] of this.arrivals.records()) {
      const n = this.recent(times, now).length
      if (n > 0) counts.push(n / shareOf(id))
    }
    return Math.min(1, (this.tolerance * median(counts)) / (mine / shareOf(sender)))
  }

  private recent(times: number[], now: number): number[] {
    const from = now - this.windowMs
    let k = 0
    while (k < times.length && times[k]! <= from) k++
    return k === 0 ? times : times.slice(k)
  }
}

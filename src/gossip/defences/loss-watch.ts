/** Watches the training loss per round, to tell an explosion (after a bad merge) from training. */

import { median } from '../../merge/steps/vector.ts'
import { InvalidArgumentError } from '../../util/errors.ts'
import {
  DEFAULT_LOSS_EXPLODE_FACTOR,
  DEFAULT_LOSS_FLOOR,
  DEFAULT_LOSS_MIN_HISTORY,
  DEFAULT_LOSS_WINDOW,
} from './constants.ts'

export interface LossWatchInit {
  /** A loss above `factor * max(median, floor)` has exploded. */
  factor?: number
  floor?: number
  /** Recent rounds the median is taken over. */
  window?: number
  /** Rounds recorded before a finite loss can count as exploded. */
  minHistory?: number
}

/** A median of recent round losses and the test of a new loss against it. */
export class LossWatch {
  private readonly factor: number
  private readonly floor: number
  private readonly window: number
  private readonly minHistory: number
  private readonly losses: number[] = []

  constructor(init: LossWatchInit = {}) {
    this.factor = init.factor ?? DEFAULT_LOSS_EXPLODE_FACTOR
    this.floor = init.floor ?? DEFAULT_LOSS_FLOOR
    this.window = init.window ?? DEFAULT_LOSS_WINDOW
    this.minHistory = init.minHistory ?? DEFAULT_LOSS_MIN_HISTORY
    if (!(this.factor > 1 && Number.isFinite(this.factor)))
      throw new InvalidArgumentError(`loss factor ${this.factor}`)
    if (!(this.floor >= 0)) throw new InvalidArgumentError(`loss floor ${this.floor}`)
    if (!(Number.isInteger(this.window) && this.window >= 1 && this.minHistory <= this.window)) {
      throw new InvalidArgumentError(`loss window ${this.window}, min history ${this.minHistory}`)
    }
  }

  /** The loss above which a round has exploded; Infinity until enough rounds are recorded. */
  get threshold(): number {
    if (this.losses.length < this.minHistory) return Number.POSITIVE_INFINITY
    return this.factor * Math.max(median(this.losses), this.floor)
  }

  /** True when `loss` is not finite or above the threshold. */
  exploded(loss: number): boolean {
    return !Number.isFinite(loss) || loss > this.threshold
  }

  /** Adds a round's (healthy) loss to the history. */
  record(loss: number): void {
    if (!Number.isFinite(loss)) return
    this.losses.push(loss)
    if (this.losses.length > this.window) this.losses.shift()
  }
}

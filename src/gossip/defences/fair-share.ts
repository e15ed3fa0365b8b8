/**
 * Fair share of merges: a token bucket per sender, so that no peer places more models in the
 * merge queue per unit time than about what an honest push rate produces.
 */

import { InvalidArgumentError } from '../../util/errors.ts'
import { DEFAULT_FAIR_SHARE_BURST, MAX_TRACKED_SENDERS } from './constants.ts'
import { SenderMap } from './sender-map.ts'

export interface FairShareInit {
  /** Tokens a sender starts with and can save up. */
  burst?: number
  /** Senders tracked at once. */
  maxSenders?: number
}

interface Bucket {
  tokens: number
  at: number
}

/** Token buckets per sender; the refill rate is the caller's, per call (it follows our own speed). */
export class FairShare {
  private readonly burst: number
  private readonly buckets: SenderMap<Bucket>

  constructor(init: FairShareInit = {}) {
    this.burst = init.burst ?? DEFAULT_FAIR_SHARE_BURST
    if (!(this.burst >= 1 && Number.isFinite(this.burst)))
      throw new InvalidArgumentError(`fair-share burst ${this.burst}`)
    this.buckets = new SenderMap(init.maxSenders ?? MAX_TRACKED_SENDERS)
  }

  /**
   * Takes a token for one model from `sender` at `now` (ms), refilling at `ratePerS` since its
   * last model. False when its bucket is empty: the model is over its fair share.
   */
  take(sender: string, now: number, ratePerS: number): boolean {
    const b = this.buckets.get(sender) ?? { tokens: this.burst, at: now }
    const tokens = Math.min(this.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * ratePerS)
    const ok = tokens >= 1
    this.buckets.set(sender, { tokens: ok ? tokens - 1 : tokens, at: now })
    return ok
  }
}

/**
 * Plausibility of claimed ages: a sender's age may grow, from what it claimed before, by at most
 * a generous training rate times the time elapsed plus a burst. An age beyond is a rejection.
 */

import { InvalidArgumentError } from '../../util/errors.ts'
import { DEFAULT_AGE_BURST_S, MAX_PLAUSIBLE_AGE, MAX_TRACKED_SENDERS } from './constants.ts'
import { SenderMap } from './sender-map.ts'

export interface AgeClaimsInit {
  /** Seconds of growth at the allowed rate a claim may add on top of the elapsed time. */
  burstS?: number
  /** Senders tracked at once. */
  maxSenders?: number
}

interface Claim {
  age: number
  at: number
}

/** The last plausible age each sender claimed, and when. */
export class AgeClaims {
  private readonly burstS: number
  private readonly claims: SenderMap<Claim>

  constructor(init: AgeClaimsInit = {}) {
    this.burstS = init.burstS ?? DEFAULT_AGE_BURST_S
    if (!(this.burstS >= 0 && Number.isFinite(this.burstS)))
      throw new InvalidArgumentError(`age burst ${this.burstS}`)
    this.claims = new SenderMap(init.maxSenders ?? MAX_TRACKED_SENDERS)
  }

  /** The most a sender may claim at `now`, or undefined when it has no claim on record. */
  allowed(sender: string, now: number, ratePerS: number): number | undefined {
    const last = this.claims.get(sender)
    if (last === undefined) return undefined
    return last.age + ratePerS * (Math.max(0, now - last.at) / 1000 + this.burstS)
  }

  /**
   * Checks `age` claimed by `sender` at `now` (ms), with samples per second `ratePerS`. A first
   * claim is plausible when it is a finite count up to 2^53. A refused claim moves the record to
   * the most that was allowed, so an honest peer that jumped once (an old checkpoint, a merge
   * with an older peer) is accepted again after a burst, and an attacker gains no more by
   * claiming more than the allowance.
   */
  check(sender: string, age: number, now: number, ratePerS: number): boolean {
    if (!(Number.isFinite(age) && age >= 0 && age <= MAX_PLAUSIBLE_AGE)) return false
    const allowed = this.allowed(sender, now, ratePerS)
    if (allowed !== undefined && age > allowed) {
      this.claims.set(sender, { age: allowed, at: now })
      return false
    }
    this.claims.set(sender, { age, at: now })
    return true
  }
}

/**
 * Listen before talking. A node that starts behind the network (restarted from a checkpoint while
 * the others trained on, or a late joiner with a fresh model) would push a model its peers' merge
 * defences see as a distance outlier; enough of those in a row and an honest peer is banned (the
 * rejoin e2e saw restarted nodes refused, and the DEPLOY.md trial a node restarted from a 9-minute
 * old checkpoint refused for the whole cooling-off). So after start, once a received model claims
 * more training than ours, the learner holds its pushes until it has merged a few received models.
 * Holding never outlasts the models that justify it: it ends when nothing arrived for a while (two
 * nodes each waiting for the other), and after a bound in any case.
 */
import { InvalidArgumentError } from '../util/errors.ts'

/**
 * Received models to merge before pushing again. A merge takes at most half of a received model
 * (`age-cap` gives an input at most the local model's weight), so three merges bring a stale model
 * within about an eighth of its distance to the network's models: inside the distance test's radius.
 */
export const CATCH_UP_MERGES = 3

/** Holding ends when no model arrived for this long: nobody is ahead to catch up with (or two nodes wait on each other). */
export const CATCH_UP_SILENCE_MS = 3_000

/** Holding never lasts longer than this after start: a node too slow to merge still gets to talk. */
export const CATCH_UP_MAX_MS = 30_000

export interface CatchUpInit {
  merges?: number
  silenceMs?: number
  maxMs?: number
}

/** Whether a just-started learner may push yet; see the module comment. */
export class CatchUp {
  private readonly merges: number
  private readonly silenceMs: number
  private readonly endsAt: number
  private behind = false
  private over = false
  private merged = 0
  private lastHeardAt = Number.NEGATIVE_INFINITY

  constructor(startedAt: number, init: CatchUpInit = {}) {
    this.merges = init.merges ?? CATCH_UP_MERGES
    this.silenceMs = init.silenceMs ?? CATCH_UP_SILENCE_MS
    this.endsAt = startedAt + (init.maxMs ?? CATCH_UP_MAX_MS)
    if (!(Number.isInteger(this.merges) && this.merges >= 0)) {
      throw new InvalidArgumentError(`catch-up merges must be an integer >= 0, got ${this.merges}`)
    }
    if (!(this.silenceMs > 0)) throw new InvalidArgumentError(`catch-up silenceMs must be > 0`)
  }

  /** A received model was queued: `age` is its (raw) claim, `ownAge` the local model's age. */
  heard(age: number, ownAge: number, now: number): void {
    if (this.over) return
    this.lastHeardAt = now
    if (age > ownAge) this.behind = true
  }

  /** `count` received models went into a merge. */
  mergedInputs(count: number): void {
    if (this.over) return
    this.merged += count
    if (this.merged >= this.merges) this.over = true
  }

  /** True while pushes should wait; once false for a reason other than silence, false for good. */
  holding(now: number): boolean {
    if (this.over) return false
    if (now >= this.endsAt) {
      this.over = true
      return false
    }
    return this.behind && now - this.lastHeardAt < this.silenceMs
  }
}

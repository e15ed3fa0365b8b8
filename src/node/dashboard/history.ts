/**
 * The dashboard's memory of a node since it started: one small point every few seconds, kept
 * whole however long the node runs by halving the resolution of the past when the buffer fills.
 */

/** One sample of a node's counters (cumulative since start, except accuracy and loss). */
export interface HistoryPoint {
  /** Seconds since the daemon started. */
  t: number
  accuracy: number | null
  loss: number | null
  age: number
  steps: number
  modelsSent: number
  modelsReceived: number
  bytesSent: number
  bytesReceived: number
  merges: number
  /** Inbound models and announcements refused, all reasons together. */
  rejected: number
  viewSize: number
}

/**
 * Sampling period of the history: the learner evaluates every 2 s (LEARNER_DEFAULTS), so a point
 * every 2 s sees every accuracy, and reading a few counters that often costs nothing.
 */
export const HISTORY_INTERVAL_MS = 2000

/** Points kept: one hour at full resolution, then the older half is thinned to every other point. */
export const HISTORY_MAX_POINTS = 1800

/** A bounded, thinning time series of HistoryPoint. */
export class History {
  private points: HistoryPoint[] = []
  private minGapS = 0
  private readonly maxPoints: number

  constructor(init: { maxPoints?: number } = {}) {
    this.maxPoints = Math.max(4, init.maxPoints ?? HISTORY_MAX_POINTS)
  }

  /** Add a point (ignored if closer than the current resolution to the previous one). */
  push(p: HistoryPoint): void {
    const last = this.points.at(-1)
    if (last !== undefined && p.t - last.t < this.minGapS) return
    this.points.push(p)
    if (this.points.length >= this.maxPoints) {
      // Keep every other point (and the newest): the whole run stays, at half the resolution.
      const newest = this.points.at(-1)!
      this.points = this.points.filter((_, i) => i % 2 === 0)
      if (this.points.at(-1) !== newest) this.points.push(newest)
      const span = newest.t - this.points[0]!.t
      this.minGapS = (2 * span) / this.maxPoints
    }
  }

  /** Points newer than `t` seconds (all of them without `t`). */
  since(t?: number): HistoryPoint[] {
    if (t === undefined || !Number.isFinite(t)) return [...this.points]
    let lo = 0
    let hi = this.points.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.points[mid]!.t <= t) lo = mid + 1
      else hi = mid
    }
    return this.points.slice(lo)
  }

  get length(): number {
    return this.points.length
  }
}

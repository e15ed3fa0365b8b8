/** RTT smoothing: a per-peer window of recent ping samples, reported as their median. */

import { InvalidArgumentError } from '../../util/errors.ts'

/** An RTT sample that is not a finite, non-negative number of ms, or above the accepted maximum. */
export class InvalidRttError extends Error {
  static readonly name = 'InvalidRttError'
  override readonly name = 'InvalidRttError'
}

/** A median of 5 drops up to 2 outliers (GC pause, queued stream) yet follows a route change in 3 pings. */
export const DEFAULT_RTT_WINDOW = 5

/** Pings above this are treated as broken measurements, not RTTs (serf uses the same 10 s bound). */
export const MAX_RTT_MS = 10_000

export interface RttTrackerInit {
  /** Samples kept per peer (default 5). */
  windowSize?: number
  /** Largest accepted sample in ms (default 10 000). */
  maxRttMs?: number
}

/** Median of a non-empty list; the mean of the two middle values for even lengths. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Keeps the last few RTT samples of each peer and reports their median, robust to single spikes. */
export class RttTracker {
  private readonly windowSize: number
  private readonly maxRttMs: number
  private readonly windows = new Map<string, number[]>()

  constructor(init: RttTrackerInit = {}) {
    const windowSize = init.windowSize ?? DEFAULT_RTT_WINDOW
    if (!Number.isInteger(windowSize) || windowSize < 1) {
      throw new InvalidArgumentError(`windowSize must be a positive integer, got ${windowSize}`)
    }
    this.windowSize = windowSize
    this.maxRttMs = init.maxRttMs ?? MAX_RTT_MS
  }

  /** Records one sample and returns the peer's smoothed RTT; throws InvalidRttError on a bad sample. */
  record(peerId: string, rttMs: number): number {
    if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > this.maxRttMs) {
      throw new InvalidRttError(`invalid RTT sample ${rttMs} ms for ${peerId}`)
    }
    let window = this.windows.get(peerId)
    if (window === undefined) {
      window = []
      this.windows.set(peerId, window)
    }
    window.push(rttMs)
    if (window.length > this.windowSize) window.shift()
    return median(window)
  }

  /** Smoothed (median) RTT in ms, or undefined when the peer has no samples. */
  get(peerId: string): number | undefined {
    const window = this.windows.get(peerId)
    return window === undefined ? undefined : median(window)
  }

  /** The peer's retained samples, oldest first. */
  samples(peerId: string): readonly number[] {
    return [...(this.windows.get(peerId) ?? [])]
  }

  /** Drops a peer's samples (it left the view); returns whether it had any. */
  forget(peerId: string): boolean {
    return this.windows.delete(peerId)
  }

  /** Peers with at least one sample. */
  peers(): string[] {
    return [...this.windows.keys()]
  }

  /** Number of peers tracked. */
  get size(): number {
    return this.windows.size
  }

  /** Forgets every peer. */
  clear(): void {
    this.windows.clear()
  }
}

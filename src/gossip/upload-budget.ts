/**
 * An upload budget (`--max-upload RATE`): a token bucket on bytes. Tokens accrue at the
 * rate up to a burst; a push may start while the bucket is not in debt and is charged
 * the bytes it will put on the wire, so one push larger than the bucket still goes and
 * the next waits until the debt is repaid. Over any window of W seconds the bytes
 * charged are at most `burst + rate * W` plus the one push that started last. The
 * learner pushes whenever the budget allows, so a smaller encoding pushes more often
 * instead of leaving the link idle.
 */
import { InvalidArgumentError } from '../util/errors.ts'

/** Seconds of traffic the bucket holds: a second's worth lets a node catch up after a slow round, no more. */
export const UPLOAD_BURST_SECONDS = 1

/** Options of {@link UploadBudget}. */
export interface UploadBudgetInit {
  /** Sustained rate, bytes per second (> 0). */
  bytesPerSecond: number
  /** Bucket size in bytes; default UPLOAD_BURST_SECONDS of traffic. */
  burstBytes?: number
  /** Clock in ms (tests pass a fake one); default Date.now. */
  now?: () => number
}

/** A token bucket on bytes; see the module comment. */
export class UploadBudget {
  readonly bytesPerSecond: number
  readonly burstBytes: number
  private readonly now: () => number
  private tokens: number
  private last: number
  /** Bytes charged so far. */
  charged = 0

  constructor(init: UploadBudgetInit) {
    if (!(init.bytesPerSecond > 0 && Number.isFinite(init.bytesPerSecond))) {
      throw new InvalidArgumentError(
        `upload rate must be a positive number of bytes/s, got ${init.bytesPerSecond}`,
      )
    }
    this.bytesPerSecond = init.bytesPerSecond
    this.burstBytes = init.burstBytes ?? init.bytesPerSecond * UPLOAD_BURST_SECONDS
    if (!(this.burstBytes > 0)) throw new InvalidArgumentError(`burst must be > 0, got ${this.burstBytes}`)
    this.now = init.now ?? Date.now
    this.tokens = this.burstBytes
    this.last = this.now()
  }

  /** Tokens now (negative: debt). */
  available(): number {
    const t = this.now()
    this.tokens = Math.min(this.burstBytes, this.tokens + ((t - this.last) / 1000) * this.bytesPerSecond)
    this.last = t
    return this.tokens
  }

  /** True when a push may start now (the bucket is not in debt). */
  canSend(): boolean {
    return this.available() >= 0
  }

  /** Charges `bytes` (positive; a correction may be negative, a refund never exceeds the burst). */
  charge(bytes: number): void {
    this.available()
    this.tokens = Math.min(this.burstBytes, this.tokens - bytes)
    this.charged += bytes
  }

  /** Milliseconds until a push may start (0 now). */
  waitMs(): number {
    const t = this.available()
    return t >= 0 ? 0 : Math.ceil((-t / this.bytesPerSecond) * 1000)
  }
}

const RATE_UNITS: Record<string, number> = {
  bit: 1 / 8,
  kbit: 1e3 / 8,
  mbit: 1e6 / 8,
  gbit: 1e9 / 8,
  B: 1,
  kB: 1e3,
  MB: 1e6,
  KiB: 1024,
  MiB: 1024 * 1024,
}

function bitUnit(unit: string): number | undefined {
  const lower = unit.toLowerCase()
  return lower.endsWith('bit') ? RATE_UNITS[lower] : undefined
}

/**
 * Bytes per second of a rate such as `1mbit`, `200kbit`, `64kB` or `1.5MiB` (SI bits in any case,
 * SI or binary bytes; an optional `/s`). Throws InvalidArgumentError for anything else.
 */
export function parseRate(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)(?:\/s)?\s*$/.exec(text)
  // Bits in any case (Mbit, mbit); bytes as written (kB, MB: a lowercase `kb` or `mb` is ambiguous).
  const unit = m === null ? undefined : (RATE_UNITS[m[2]!] ?? bitUnit(m[2]!))
  const value = m === null ? Number.NaN : Number(m[1])
  if (unit === undefined || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(
      `'${text}' is not a rate: a positive number and a unit (bit, kbit, mbit, gbit, B, kB, MB, KiB, MiB), e.g. 1mbit`,
    )
  }
  return value * unit
}

/**
 * Vivaldi network coordinates (Dabek et al., SIGCOMM 2004), following the variant of
 * hashicorp/serf's coordinate client: Euclidean vector plus a height (the access link),
 * adaptive timestep weighted by the relative error of both ends, an error estimate,
 * a minimum height, an optional pull toward the origin and an optional per-peer
 * latency filter. Units are milliseconds throughout (serf uses seconds).
 *
 * Not taken from serf: its adjustment term (Lee et al. 2010), because the coordinate
 * we announce is `{ vec, height, error }` and the adjustment would have to travel too.
 */

import { InvalidArgumentError } from '../../util/errors.ts'
import { type Coordinate, isValidCoordinate, validateCoordinate } from './coordinate.ts'
import { InvalidRttError, MAX_RTT_MS, RttTracker } from './rtt.ts'

export {
  type Coordinate,
  InvalidCoordinateError,
  isValidCoordinate,
  MAX_COORDINATE_MS,
  validateCoordinate,
} from './coordinate.ts'

/** Defaults and the reason for each. */
export const VIVALDI_DEFAULTS = {
  /** 2-D + height: Dabek et al. find it as good as more dimensions, and it is cheap to announce. */
  dimensions: 2,
  /** Error-smoothing gain (ce) from the paper and serf. */
  ce: 0.25,
  /** Timestep gain (cc) from the paper and serf. */
  cc: 0.25,
  /** Error of a fresh node and cap on the error (serf). */
  errorMax: 1.5,
  /** serf's 10 us, in ms: keeps height positive so the height update can grow it. */
  heightMinMs: 0.01,
  /** serf's gravity radius, 150 s, in ms: a weak pull that only stops coordinate drift. Infinity disables it. */
  gravityRhoMs: 150_000,
  /** serf's latency filter: median of the last 3 raw samples per peer, used when update() gets a peerId. */
  latencyFilterSize: 3,
  /** Largest accepted RTT sample. */
  maxRttMs: MAX_RTT_MS,
} as const

/** Below this two positions coincide (serf's 1 us, in ms); also the floor for RTT and total error. */
const ZERO_THRESHOLD = 1e-3

export interface VivaldiInit {
  /** Dimensions of `vec` (default 2). */
  dimensions?: number
  /** Error gain ce (default 0.25). */
  ce?: number
  /** Timestep gain cc (default 0.25). */
  cc?: number
  /** Initial and maximum error (default 1.5). */
  errorMax?: number
  /** Minimum height in ms (default 0.01). */
  heightMinMs?: number
  /** Gravity radius in ms (default 150 000); Infinity turns gravity off. */
  gravityRhoMs?: number
  /** Per-peer median filter length for update() calls that name the peer (default 3); 0 or 1 turns it off. */
  latencyFilterSize?: number
  /** Largest accepted RTT in ms (default 10 000). */
  maxRttMs?: number
  /** Randomness for the direction between coincident nodes; injectable for seeded tests. */
  random?: () => number
}

export interface VivaldiUpdateOptions {
  /** The remote peer: when set and the latency filter is on, the median of its last samples is used. */
  peerId?: string
}

function euclid(a: readonly number[], b: readonly number[]): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!
    sum += d * d
  }
  return Math.sqrt(sum)
}

/** Predicted RTT in ms between two coordinates; throws InvalidCoordinateError if invalid or of unequal dimensions. */
export function distance(a: Coordinate, b: Coordinate): number {
  validateCoordinate(a)
  validateCoordinate(b, a.vec.length)
  return euclid(a.vec, b.vec) + a.height + b.height
}

/** A node's coordinate before any sample: at the origin, minimum height, maximum error. */
export function originCoordinate(
  init: { dimensions?: number; heightMinMs?: number; errorMax?: number } = {},
): Coordinate {
  return {
    vec: new Array<number>(init.dimensions ?? VIVALDI_DEFAULTS.dimensions).fill(0),
    height: init.heightMinMs ?? VIVALDI_DEFAULTS.heightMinMs,
    error: init.errorMax ?? VIVALDI_DEFAULTS.errorMax,
  }
}

function cloneCoordinate(c: Coordinate): Coordinate {
  return { vec: [...c.vec], height: c.height, error: c.error }
}

/** The local node's Vivaldi state: feed it (remote coordinate, RTT) samples; read its coordinate. */
export class VivaldiClient {
  private readonly dims: number
  private readonly ce: number
  private readonly cc: number
  private readonly errorMax: number
  private readonly heightMinMs: number
  private readonly gravityRhoMs: number
  private readonly maxRttMs: number
  private readonly random: () => number
  private readonly filter: RttTracker | undefined
  private readonly origin: Coordinate
  private coord: Coordinate
  private resetCount = 0

  constructor(init: VivaldiInit = {}) {
    const d = VIVALDI_DEFAULTS
    this.dims = init.dimensions ?? d.dimensions
    this.ce = init.ce ?? d.ce
    this.cc = init.cc ?? d.cc
    this.errorMax = init.errorMax ?? d.errorMax
    this.heightMinMs = init.heightMinMs ?? d.heightMinMs
    this.gravityRhoMs = init.gravityRhoMs ?? d.gravityRhoMs
    this.maxRttMs = init.maxRttMs ?? d.maxRttMs
    this.random = init.random ?? Math.random
    if (!Number.isInteger(this.dims) || this.dims < 1) {
      throw new InvalidArgumentError(`dimensions must be a positive integer, got ${this.dims}`)
    }
    if (!(this.ce > 0 && this.ce <= 1 && this.cc > 0 && this.cc <= 1)) {
      throw new InvalidArgumentError(`ce and cc must be in (0, 1], got ${this.ce}, ${this.cc}`)
    }
    if (!(this.errorMax > 0) || !(this.heightMinMs > 0) || !(this.gravityRhoMs > 0)) {
      throw new InvalidArgumentError('errorMax, heightMinMs and gravityRhoMs must be positive')
    }
    const filterSize = init.latencyFilterSize ?? d.latencyFilterSize
    this.filter =
      filterSize > 1 ? new RttTracker({ windowSize: filterSize, maxRttMs: this.maxRttMs }) : undefined
    this.origin = originCoordinate({
      dimensions: this.dims,
      heightMinMs: this.heightMinMs,
      errorMax: this.errorMax,
    })
    this.coord = cloneCoordinate(this.origin)
  }

  /** A copy of the current local coordinate (what we announce). */
  get coordinate(): Coordinate {
    return cloneCoordinate(this.coord)
  }

  /** Dimensions of `vec`. */
  get dimensions(): number {
    return this.dims
  }

  /** How many times the coordinate went non-finite and was reset to the origin. */
  get resets(): number {
    return this.resetCount
  }

  /**
   * Moves the local coordinate after measuring `rttMs` to a node that announced `remote`;
   * returns the new coordinate. Throws InvalidCoordinateError / InvalidRttError and then leaves state untouched.
   */
  update(remote: Coordinate, rttMs: number, options: VivaldiUpdateOptions = {}): Coordinate {
    const other = validateCoordinate(remote, this.dims)
    if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > this.maxRttMs) {
      throw new InvalidRttError(`invalid RTT sample ${rttMs} ms`)
    }
    const rtt =
      this.filter !== undefined && options.peerId !== undefined
        ? this.filter.record(options.peerId, rttMs)
        : rttMs
    this.step(other, rtt)
    this.applyGravity()
    if (!isValidCoordinate(this.coord, this.dims)) {
      // A blow-up (hostile or absurd input) must not poison every later prediction.
      this.resetCount++
      this.coord = cloneCoordinate(this.origin)
    }
    return this.coordinate
  }

  /** Predicted RTT in ms from us to `remote`; throws InvalidCoordinateError when it is invalid. */
  distanceTo(remote: Coordinate): number {
    return distance(this.coord, validateCoordinate(remote, this.dims))
  }

  /** Drops a peer's latency-filter samples (it left the view). */
  forget(peerId: string): void {
    this.filter?.forget(peerId)
  }

  /** Back to the origin with maximum error; forgets all filtered samples. */
  reset(): void {
    this.coord = cloneCoordinate(this.origin)
    this.filter?.clear()
  }

  /** One Vivaldi spring step toward (or away from) `other`. */
  private step(other: Coordinate, rttMs: number): void {
    const rtt = Math.max(rttMs, ZERO_THRESHOLD)
    const dist = distance(this.coord, other)
    const relErr = Math.abs(dist - rtt) / rtt
    // Adaptive timestep: trust the sample in proportion to how unsure we are relative to the remote.
    const totalError = Math.max(this.coord.error + other.error, ZERO_THRESHOLD)
    const weight = this.coord.error / totalError
    const error = Math.min(
      this.ce * weight * relErr + this.coord.error * (1 - this.ce * weight),
      this.errorMax,
    )
    const force = this.cc * weight * (rtt - dist)
    this.coord = { ...this.applyForce(this.coord, force, other), error }
  }

  /** serf's weak pull toward the origin, so the whole system does not drift away over time. */
  private applyGravity(): void {
    const dist = distance(this.origin, this.coord)
    // serf computes (d / rho)^2 in seconds; in ms the same pull is 1000x larger.
    const force = -((dist / this.gravityRhoMs) ** 2) * 1000
    if (force !== 0) this.coord = this.applyForce(this.coord, force, this.origin)
  }

  /** Moves `c` by `force` ms along the direction away from `other`; height scales with the same force. */
  private applyForce(c: Coordinate, force: number, other: Coordinate): Coordinate {
    const [unit, mag] = this.unitVectorAt(c.vec, other.vec)
    const vec = c.vec.map((x, i) => x + unit[i]! * force)
    let height = c.height
    if (mag > ZERO_THRESHOLD) {
      height = Math.max(c.height + (force * (c.height + other.height)) / mag, this.heightMinMs)
    }
    return { vec, height, error: c.error }
  }

  /** Unit vector from `b` to `a` and their distance; a random direction (distance 0) when they coincide. */
  private unitVectorAt(a: readonly number[], b: readonly number[]): [number[], number] {
    const diff = a.map((x, i) => x - b[i]!)
    const mag = Math.hypot(...diff)
    if (mag > ZERO_THRESHOLD) return [diff.map((x) => x / mag), mag]
    const rnd = diff.map(() => this.random() - 0.5)
    const rmag = Math.hypot(...rnd)
    if (rmag > ZERO_THRESHOLD) return [rnd.map((x) => x / rmag), 0]
    const axis = new Array<number>(a.length).fill(0)
    axis[0] = 1
    return [axis, 0]
  }
}

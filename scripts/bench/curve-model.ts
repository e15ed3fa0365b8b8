/**
 * What the bench:topology readings say when the truth is known: a smooth model of a
 * mean-accuracy curve, the noise measured around it, and readings of simulated runs in which
 * topology is faster than uniform by one known factor at every level.
 *
 * The reading at the highest level both samplers reach is censored: that level is set by the
 * slower curve's highest (noisy) poll, which comes near the end of its run, while the faster curve
 * crosses it on its own schedule. Simulating runs whose true speed-up is known measures how far
 * that reading (and the averaged one, and the lower levels) sits from the truth.
 */
import { median } from '../../src/gossip/topology/rtt.ts'
import type { Rng } from '../../src/util/rng.ts'
import {
  averagedSpeedUps,
  type Curve,
  highestCommonLevel,
  type RunPair,
  speedUp,
  TARGET_ACCURACY,
} from './curves.ts'

/** acc(t) = c0 + c1 x + c2 x^2 + c3 x^3, x = ln t: rises fast, then flattens as learning curves do. */
export type SmoothCurve = (t: number) => number

/**
 * Least-squares fit of a cubic in ln t to the points of `curve` from `fromS` on; before `fromS` it
 * holds its value there. Throws when fewer than 4 points are in range.
 */
export function fitLogCubic(curve: Curve, fromS: number): SmoothCurve {
  const pts = curve.filter((p) => p.t >= fromS && p.t > 0)
  if (pts.length < 4) throw new RangeError(`a cubic needs 4 points from ${fromS} s, got ${pts.length}`)
  // Normal equations (X'X) c = X'y, with x centred for conditioning.
  const x0 = pts.reduce((a, p) => a + Math.log(p.t), 0) / pts.length
  const ata = Array.from({ length: 4 }, () => [0, 0, 0, 0])
  const aty = [0, 0, 0, 0]
  for (const p of pts) {
    const x = Math.log(p.t) - x0
    const row = [1, x, x * x, x * x * x]
    for (let i = 0; i < 4; i++) {
      aty[i]! += row[i]! * p.acc
      for (let j = 0; j < 4; j++) ata[i]![j]! += row[i]! * row[j]!
    }
  }
  const c = solve(ata, aty)
  return (t) => {
    const x = Math.log(Math.max(t, fromS)) - x0
    return c[0]! + x * (c[1]! + x * (c[2]! + x * c[3]!))
  }
}

/** Gaussian elimination with partial pivoting; `a` and `b` are overwritten. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length
  for (let k = 0; k < n; k++) {
    let p = k
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i]![k]!) > Math.abs(a[p]![k]!)) p = i
    if (a[p]![k] === 0) throw new RangeError('the points do not determine a cubic (all at one time?)')
    ;[a[k], a[p]] = [a[p]!, a[k]!]
    ;[b[k], b[p]] = [b[p]!, b[k]!]
    for (let i = k + 1; i < n; i++) {
      const f = a[i]![k]! / a[k]![k]!
      for (let j = k; j < n; j++) a[i]![j]! -= f * a[k]![j]!
      b[i]! -= f * b[k]!
    }
  }
  const out = new Array<number>(n).fill(0)
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!
    for (let j = i + 1; j < n; j++) s -= a[i]![j]! * out[j]!
    out[i] = s / a[i]![i]!
  }
  return out
}

/**
 * The whole-curve speed-up: the factor k (searched in [0.5, 4], to 0.001) for which `topology`
 * slowed by k, t -> topology(t / k), best fits `uniform`'s points from `fromS` on (least squares).
 * Every poll of the curve counts, not one crossing of one level.
 */
export function timeScale(uniform: Curve, topology: SmoothCurve, fromS: number): number {
  const pts = uniform.filter((p) => p.t >= fromS)
  if (pts.length === 0) throw new RangeError(`no point of the curve from ${fromS} s`)
  const loss = (k: number) => pts.reduce((a, p) => a + (p.acc - topology(p.t / k)) ** 2, 0)
  // A coarse grid, then golden-section search around its best point.
  let best = 0.5
  let bestLoss = loss(best)
  for (let k = 0.55; k <= 4; k += 0.05) {
    const l = loss(k)
    if (l < bestLoss) [best, bestLoss] = [k, l]
  }
  let lo = Math.max(0.5, best - 0.05)
  let hi = Math.min(4, best + 0.05)
  const g = (Math.sqrt(5) - 1) / 2
  while (hi - lo > 1e-3) {
    const a = hi - g * (hi - lo)
    const b = lo + g * (hi - lo)
    if (loss(a) <= loss(b)) hi = b
    else lo = a
  }
  return (lo + hi) / 2
}

/** Poll-to-poll noise of a mean-accuracy curve: its standard deviation and lag-1 autocorrelation. */
export interface CurveNoise {
  sd: number
  phi: number
}

/**
 * The noise of `curves` around each one's own log-cubic fit from `fromS` on (the plateau, where
 * the readings are taken), pooled over the curves.
 */
export function residualNoise(curves: readonly Curve[], fromS: number): CurveNoise {
  let ss = 0
  let lag = 0
  let n = 0
  for (const c of curves) {
    const smooth = fitLogCubic(c, fromS)
    const r = c.filter((p) => p.t >= fromS).map((p) => p.acc - smooth(p.t))
    r.forEach((v, i) => {
      ss += v * v
      if (i > 0) lag += v * r[i - 1]!
    })
    n += r.length
  }
  // A curve that is its own fit leaves rounding errors: no noise, and no correlation to read.
  if (n === 0 || ss / n < 1e-20) return { sd: 0, phi: 0 }
  return { sd: Math.sqrt(ss / n), phi: lag / ss }
}

/** `n` samples of a stationary AR(1) process with the given standard deviation and lag-1 correlation. */
export function ar1(n: number, noise: CurveNoise, rng: Pick<Rng, 'normal'>): number[] {
  const out: number[] = []
  const innovation = noise.sd * Math.sqrt(Math.max(0, 1 - noise.phi * noise.phi))
  let e = noise.sd * rng.normal()
  for (let i = 0; i < n; i++) {
    if (i > 0) e = noise.phi * e + innovation * rng.normal()
    out.push(e)
  }
  return out
}

export interface SimulateInit {
  /** The faster sampler's smooth curve; the slower one is it slowed by `speedUp`: u(t) = topology(t / speedUp). */
  topology: SmoothCurve
  /** The true speed-up, at every level. */
  speedUp: number
  noise: CurveNoise
  /** Runs per simulated series (the seeds of a bench:topology-seeds series). */
  runs: number
  durationS: number
  /** Poll period of the simulated curves (bench:topology polls about once a second). */
  pollS: number
  /** Simulated series. */
  reps: number
  /** Lower levels read on the averaged curves, as bench:topology-seeds --levels. */
  levels: readonly number[]
  /** Where a series' topology curve is fitted from, and where timeScale reads uniform's from. */
  fitFromS: number
  scaleFromS: number
  rng: Pick<Rng, 'normal'>
}

export interface SimulatedReadings {
  /** Each simulated run's speed-up at its own highest common level (sorted). */
  perRun: number[]
  /** The median of those over each series' runs (sorted): the "per-run median" of a series. */
  seriesMedian: number[]
  /** Each series' averaged curves at their highest common level (sorted). */
  averaged: number[]
  /** Each series' averaged curves at each of `levels` below their highest common one (sorted). */
  atLevels: Map<number, number[]>
  /** Each series' `timeScale` of its averaged curves, topology's fitted as the runs' is (sorted). */
  timeScale: number[]
}

/** Reads simulated series exactly as bench:topology-seeds reads measured ones. */
export function simulateReadings(init: SimulateInit): SimulatedReadings {
  const { topology, speedUp: k, noise, runs, durationS, pollS, reps, levels, rng } = init
  const grid: number[] = []
  for (let t = pollS; t <= durationS; t += pollS) grid.push(t)
  const noisy = (f: SmoothCurve): Curve => {
    const e = ar1(grid.length, noise, rng)
    return grid.map((t, i) => ({ t, acc: f(t) + e[i]! }))
  }
  const slowed: SmoothCurve = (t) => topology(t / k)
  const out: SimulatedReadings = {
    perRun: [],
    seriesMedian: [],
    averaged: [],
    atLevels: new Map(),
    timeScale: [],
  }
  for (const l of levels) out.atLevels.set(l, [])
  for (let rep = 0; rep < reps; rep++) {
    const pairs: RunPair[] = []
    const ups: number[] = []
    for (let r = 0; r < runs; r++) {
      const pair = { uniform: noisy(slowed), topology: noisy(topology) }
      pairs.push(pair)
      const up = speedUp(
        pair.uniform,
        pair.topology,
        highestCommonLevel([pair.uniform, pair.topology], TARGET_ACCURACY),
      )
      if (up !== null) ups.push(up)
    }
    out.perRun.push(...ups)
    if (ups.length > 0) out.seriesMedian.push(median(ups))
    const avg = averagedSpeedUps(pairs, durationS, levels)
    if (avg.speedUp !== null) out.averaged.push(avg.speedUp)
    for (const a of avg.atLevels) if (a.speedUp !== null) out.atLevels.get(a.level)!.push(a.speedUp)
    out.timeScale.push(timeScale(avg.avgU, fitLogCubic(avg.avgT, init.fitFromS), init.scaleFromS))
  }
  for (const v of [out.perRun, out.seriesMedian, out.averaged, out.timeScale, ...out.atLevels.values()]) {
    v.sort((a, b) => a - b)
  }
  return out
}

/** The value at quantile `q` of sorted `values` (nearest rank), undefined when empty. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/** Mean, sample SD and standard error of `values` (SD and error NaN for fewer than 2), undefined when empty. */
export function meanSpread(values: readonly number[]): { mean: number; sd: number; se: number } | undefined {
  const n = values.length
  if (n === 0) return undefined
  const mean = values.reduce((a, v) => a + v, 0) / n
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1))
  return { mean, sd, se: sd / Math.sqrt(n) }
}

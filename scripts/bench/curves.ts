/**
 * Mean-accuracy curves of bench:topology: time to a level, time-averages, and the average of
 * several seeds' curves. One crossing of one level in one seed is a noisy event (the mean curve
 * moves 2-3 points from one poll to the next near its plateau); the seeds' average is not.
 */
import type { Rng } from '../../src/util/rng.ts'

/** The level bench:topology times first; when a run does not reach it, the highest level both samplers reach. */
export const TARGET_ACCURACY = 0.95

/** A mean-accuracy curve: the mean over peers of each peer's latest evaluation, at each poll. */
export type Curve = ReadonlyArray<{ t: number; acc: number; steps?: number }>

/** The first point of `curve` at or above `level`. */
export const firstReach = <P extends Curve[number]>(curve: readonly P[], level: number): P | undefined =>
  curve.find((c) => c.acc >= level)

/** The curve's value at `t`: its last point at or before `t`, held (undefined before its first). */
export function heldAt(curve: Curve, t: number): number | undefined {
  let value: number | undefined
  for (const c of curve) {
    if (c.t > t) break
    value = c.acc
  }
  return value
}

/**
 * Time-average of the curve over [from, to], each point held until the next, or null when the
 * curve starts after `from`.
 */
export function averageAccuracy(curve: Curve, from: number, to: number): number | null {
  let area = 0
  for (let i = 0; i < curve.length; i++) {
    const start = Math.max(curve[i]!.t, from)
    const end = Math.min(curve[i + 1]?.t ?? to, to)
    if (end > start) area += curve[i]!.acc * (end - start)
  }
  const held = curve.some((c) => c.t <= from)
  return held && to > from ? area / (to - from) : null
}

/**
 * The pointwise mean of several curves on a grid of `stepS` seconds up to `untilS`, from the
 * first grid point where every curve is defined.
 */
export function averageCurves(curves: readonly Curve[], untilS: number, stepS = 0.5): Curve {
  const out: Array<{ t: number; acc: number }> = []
  if (curves.length === 0) return out
  // One cursor per curve (its last point at or before t, as heldAt): linear in the points, so a
  // bootstrap or a simulation can average thousands of sets.
  const at = curves.map(() => -1)
  for (let k = 0; k * stepS <= untilS; k++) {
    const t = k * stepS
    let sum = 0
    let defined = 0
    curves.forEach((c, i) => {
      while (at[i]! + 1 < c.length && c[at[i]! + 1]!.t <= t) at[i]!++
      if (at[i]! >= 0) {
        sum += c[at[i]!]!.acc
        defined++
      }
    })
    if (defined === curves.length) out.push({ t, acc: sum / defined })
  }
  return out
}

/** The points of `curve` up to `untilS` seconds: a run read as if it had stopped then. */
export const truncate = <P extends Curve[number]>(curve: readonly P[], untilS: number): P[] =>
  curve.filter((c) => c.t <= untilS)

/** The highest level every curve reaches, rounded down to 0.005, capped at `target`. */
export function highestCommonLevel(curves: readonly Curve[], target: number): number {
  const best = Math.min(...curves.map((c) => Math.max(0, ...c.map((p) => p.acc))))
  return best >= target ? target : Math.floor(best * 200) / 200
}

/** Uniform's time to `level` over topology's, or null when either never reaches it. */
export function speedUp(uniform: Curve, topology: Curve, level: number): number | null {
  const u = firstReach(uniform, level)?.t
  const t = firstReach(topology, level)?.t
  return u !== undefined && t !== undefined && t > 0 ? u / t : null
}

/** Several runs of both samplers, each a pair of mean-accuracy curves. */
export type RunPair = { readonly uniform: Curve; readonly topology: Curve }

/**
 * The runs' averaged curves (first `untilS` seconds), read at their highest common level and at
 * each of `levels` below it.
 */
export function averagedSpeedUps(runs: readonly RunPair[], untilS: number, levels: readonly number[]) {
  const avgU = averageCurves(
    runs.map((r) => r.uniform),
    untilS,
  )
  const avgT = averageCurves(
    runs.map((r) => r.topology),
    untilS,
  )
  const level = highestCommonLevel([avgU, avgT], TARGET_ACCURACY)
  const atLevels = levels.filter((l) => l < level).map((l) => ({ level: l, speedUp: speedUp(avgU, avgT, l) }))
  return { avgU, avgT, level, speedUp: speedUp(avgU, avgT, level), atLevels }
}

/**
 * How far the averaged reading moves with which runs were made: `n` resamples of the runs with
 * replacement, each read by `averagedSpeedUps`. Returns the speed-ups (sorted) at each resample's
 * highest common level (key `null`) and at each of `levels` (a resample whose common level is not
 * above a level gives none there).
 */
export function bootstrapSpeedUps(
  runs: readonly RunPair[],
  untilS: number,
  levels: readonly number[],
  n: number,
  rng: Pick<Rng, 'int'>,
): Map<number | null, number[]> {
  const out = new Map<number | null, number[]>([
    [null, []],
    ...levels.map((l) => [l, []] as [number, number[]]),
  ])
  for (let b = 0; b < n; b++) {
    const r = averagedSpeedUps(
      runs.map(() => runs[rng.int(runs.length)]!),
      untilS,
      levels,
    )
    if (r.speedUp !== null) out.get(null)!.push(r.speedUp)
    for (const a of r.atLevels) if (a.speedUp !== null) out.get(a.level)!.push(a.speedUp)
  }
  for (const v of out.values()) v.sort((a, b) => a - b)
  return out
}

/** One peer's counters over time, as bench:topology's JSON keeps them (`results[sampler].peers[].series`). */
export type PeerSeries = ReadonlyArray<{
  t: number
  merges?: number
  steps?: number
  bytesWithinRegion?: number
  bytesAcrossRegions?: number
}>

/**
 * The mean over peers of a counter's value at `t` (each peer's last point at or before it; a
 * peer with none by then, or without the counter, is left out), or null when no peer has one.
 */
export function meanCounterAt(
  peers: readonly PeerSeries[],
  key: 'merges' | 'steps',
  t: number,
): number | null {
  let sum = 0
  let n = 0
  for (const series of peers) {
    let value: number | undefined
    for (const p of series) {
      if (p.t > t) break
      if (typeof p[key] === 'number') value = p[key]
    }
    if (value === undefined) continue
    sum += value
    n++
  }
  return n > 0 ? sum / n : null
}

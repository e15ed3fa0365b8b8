import { describe, expect, it } from 'vitest'
import {
  ar1,
  fitLogCubic,
  meanSpread,
  quantile,
  residualNoise,
  type SimulateInit,
  simulateReadings,
  timeScale,
} from '../../../../scripts/bench/curve-model.ts'
import { createRng } from '../../../../src/util/rng.ts'

/** A learning curve: fast, then flat (0.9 in the limit). */
const learning = (t: number) => 0.9 - 0.6 / Math.sqrt(Math.max(t, 1))

/** A series of 300 s runs polled every second, topology truly 1.5x faster, read at 0.80 too. */
const simulate = (init: Pick<SimulateInit, 'noise' | 'runs' | 'reps' | 'rng'>) =>
  simulateReadings({
    topology: learning,
    speedUp: 1.5,
    durationS: 300,
    pollS: 1,
    levels: [0.8],
    fitFromS: 10,
    scaleFromS: 30,
    ...init,
  })

const grid = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('bench curve model', () => {
  it('fits a cubic in ln t exactly, holds it before the fit starts, and needs 4 points', () => {
    const exact = (t: number) => {
      const x = Math.log(t)
      return 0.1 + 0.2 * x - 0.03 * x * x + 0.001 * x * x * x
    }
    const smooth = fitLogCubic(
      grid(10, 300).map((t) => ({ t, acc: exact(t) })),
      10,
    )
    for (const t of [10, 55, 200, 300]) expect(smooth(t)).toBeCloseTo(exact(t), 9)
    expect(smooth(2)).toBeCloseTo(exact(10), 9)
    expect(() =>
      fitLogCubic(
        [
          { t: 20, acc: 0.5 },
          { t: 30, acc: 0.6 },
          { t: 40, acc: 0.7 },
        ],
        10,
      ),
    ).toThrow(RangeError)
  })

  it('draws AR(1) noise with the asked spread and correlation, and reads them back around a fit', () => {
    const e = ar1(20_000, { sd: 0.01, phi: 0.7 }, createRng(1))
    const sd = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / e.length)
    expect(sd).toBeGreaterThan(0.009)
    expect(sd).toBeLessThan(0.011)
    const curve = grid(1, 20_000).map((t) => ({ t, acc: learning(t) + e[t - 1]! }))
    const noise = residualNoise([curve], 100)
    expect(noise.sd).toBeGreaterThan(0.009)
    expect(noise.sd).toBeLessThan(0.011)
    expect(noise.phi).toBeGreaterThan(0.65)
    expect(noise.phi).toBeLessThan(0.75)
    // A noiseless curve that is its own fit has no noise to report.
    const exact = grid(1, 300).map((t) => ({ t, acc: 0.5 + 0.01 * Math.log(t) }))
    expect(residualNoise([exact], 10)).toEqual({ sd: 0, phi: 0 })
  })

  it('reads the true speed-up from noiseless runs, to the poll', () => {
    const r = simulate({ noise: { sd: 0, phi: 0 }, runs: 3, reps: 2, rng: createRng(2) })
    expect(r.perRun).toHaveLength(6)
    expect(r.seriesMedian).toHaveLength(2)
    for (const v of [...r.perRun, ...r.averaged, ...r.atLevels.get(0.8)!, ...r.timeScale]) {
      expect(v).toBeGreaterThan(1.45)
      expect(v).toBeLessThan(1.55)
    }
  })

  it('with noise, one run read at its highest common level under-reads the truth; a lower level does not', () => {
    const r = simulate({ noise: { sd: 0.0116, phi: 0.67 }, runs: 10, reps: 60, rng: createRng(3) })
    expect(r.perRun).toHaveLength(600)
    expect(quantile(r.perRun, 0.5)!).toBeLessThan(1.45)
    const low = quantile(r.atLevels.get(0.8)!, 0.5)!
    expect(low).toBeGreaterThan(1.4)
    expect(low).toBeLessThan(1.6)
    // The whole-curve fit reads the truth, with a spread well inside the bias of the crossing.
    expect(quantile(r.timeScale, 0.5)!).toBeGreaterThan(1.45)
    expect(quantile(r.timeScale, 0.5)!).toBeLessThan(1.55)
  })

  it('finds the factor that slows one curve onto another', () => {
    const slowed = grid(1, 300).map((t) => ({ t, acc: learning(t / 1.37) }))
    expect(timeScale(slowed, learning, 30)).toBeCloseTo(1.37, 2)
    expect(
      timeScale(
        grid(1, 300).map((t) => ({ t, acc: learning(t) })),
        learning,
        30,
      ),
    ).toBeCloseTo(1, 2)
    expect(() => timeScale(slowed, learning, 400)).toThrow(RangeError)
  })

  it('takes nearest-rank quantiles of sorted values', () => {
    expect(quantile([], 0.5)).toBeUndefined()
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2)
    expect(quantile([1, 2, 3, 4], 0.95)).toBe(4)
    expect(quantile([1, 2, 3, 4], 0)).toBe(1)
  })

  it('gives the mean, the sample SD and the standard error, nothing for no values', () => {
    expect(meanSpread([])).toBeUndefined()
    const m = meanSpread([1, 2, 3, 4])!
    expect(m.mean).toBe(2.5)
    expect(m.sd).toBeCloseTo(Math.sqrt(5 / 3), 12) // squares 2.25 + 0.25 + 0.25 + 2.25 over n - 1
    expect(m.se).toBeCloseTo(Math.sqrt(5 / 3) / 2, 12)
    expect(meanSpread([7])!.mean).toBe(7)
  })
})

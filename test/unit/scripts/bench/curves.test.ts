import { describe, expect, it } from 'vitest'
import {
  averageAccuracy,
  averageCurves,
  averagedSpeedUps,
  bootstrapSpeedUps,
  firstReach,
  heldAt,
  highestCommonLevel,
  meanCounterAt,
  speedUp,
  truncate,
} from '../../../../scripts/bench/curves.ts'
import { createRng } from '../../../../src/util/rng.ts'

const curve = (points: Array<[number, number]>) => points.map(([t, acc]) => ({ t, acc }))

describe('bench curves', () => {
  it('holds each point until the next, undefined before the first', () => {
    const c = curve([
      [2, 0.5],
      [4, 0.7],
    ])
    expect(heldAt(c, 1)).toBeUndefined()
    expect(heldAt(c, 3)).toBe(0.5)
    expect(heldAt(c, 10)).toBe(0.7)
  })

  it('truncates a curve at a time, the point at it kept, so a shorter run reads a lower common level', () => {
    const u = curve([
      [0, 0.5],
      [100, 0.8],
      [200, 0.85],
      [300, 0.87],
    ])
    const t = curve([
      [0, 0.5],
      [50, 0.8],
      [150, 0.86],
      [250, 0.9],
    ])
    expect(truncate(u, 200)).toEqual(u.slice(0, 3))
    expect(truncate(u, 1e9)).toEqual(u)
    expect(truncate(u, -1)).toEqual([])
    expect(highestCommonLevel([u, t], 0.95)).toBe(0.87)
    expect(highestCommonLevel([truncate(u, 200), truncate(t, 200)], 0.95)).toBe(0.85)
    expect(speedUp(truncate(u, 200), truncate(t, 200), 0.85)).toBeCloseTo(200 / 150)
  })

  it('time-averages a curve over a window, null when it starts inside it', () => {
    const c = curve([
      [0, 0.4],
      [10, 0.8],
    ])
    expect(averageAccuracy(c, 0, 20)).toBeCloseTo(0.6)
    expect(averageAccuracy(c, 5, 10)).toBeCloseTo(0.4)
    expect(averageAccuracy(curve([[5, 0.4]]), 0, 10)).toBeNull()
  })

  it('averages curves point by point on the grid once every curve is defined', () => {
    const a = curve([
      [0, 0.2],
      [2, 0.6],
    ])
    const b = curve([
      [1, 0.4],
      [3, 1],
    ])
    const avg = averageCurves([a, b], 3, 1)
    expect(avg.map((p) => p.t)).toEqual([1, 2, 3])
    for (const [i, want] of [0.3, 0.5, 0.8].entries()) expect(avg[i]!.acc).toBeCloseTo(want)
  })

  it('takes the highest level both reach, rounded down to 0.005, capped at the target', () => {
    const low = curve([[1, 0.8779]])
    const high = curve([[1, 0.91]])
    expect(highestCommonLevel([low, high], 0.95)).toBe(0.875)
    expect(highestCommonLevel([curve([[1, 0.97]]), curve([[2, 0.99]])], 0.95)).toBe(0.95)
  })

  it('divides the uniform time to a level by the topology time, null if either never reaches it', () => {
    const u = curve([
      [10, 0.5],
      [30, 0.85],
    ])
    const t = curve([
      [10, 0.5],
      [15, 0.86],
    ])
    expect(firstReach(u, 0.85)?.t).toBe(30)
    expect(speedUp(u, t, 0.85)).toBe(2)
    expect(speedUp(u, t, 0.9)).toBeNull()
  })

  // Uniform reaches 0.8 at 40 s and 0.9 at 80 s, topology at 20 s and 40 s; a second pair is slower.
  const fast = {
    uniform: curve([
      [0, 0.5],
      [40, 0.8],
      [80, 0.9],
    ]),
    topology: curve([
      [0, 0.5],
      [20, 0.8],
      [40, 0.9],
    ]),
  }
  const slow = {
    uniform: curve([
      [0, 0.5],
      [60, 0.8],
      [90, 0.85],
    ]),
    topology: curve([
      [0, 0.5],
      [30, 0.8],
      [45, 0.85],
    ]),
  }

  it("reads the runs' averaged curves at their highest common level and at lower levels only", () => {
    const r = averagedSpeedUps([fast, fast], 100, [0.8, 0.95])
    expect(r.level).toBe(0.9)
    expect(r.speedUp).toBe(2)
    expect(r.atLevels).toEqual([{ level: 0.8, speedUp: 2 }])
    // Averaged with the slower pair, both curves top out at 0.875.
    expect(averagedSpeedUps([fast, slow], 100, [0.8]).level).toBe(0.875)
  })

  it('bootstraps the averaged reading: every resample of identical runs reads the same', () => {
    const same = bootstrapSpeedUps([fast, fast, fast], 100, [0.8], 50, createRng(1))
    expect(same.get(null)).toEqual(Array(50).fill(2))
    expect(same.get(0.8)).toEqual(Array(50).fill(2))
  })

  it('bootstraps reproducibly from a seed, sorted, and skips a level no resample clears', () => {
    const a = bootstrapSpeedUps([fast, slow], 100, [0.8, 0.9], 200, createRng(7))
    const b = bootstrapSpeedUps([fast, slow], 100, [0.8, 0.9], 200, createRng(7))
    expect(a).toEqual(b)
    const top = a.get(null)!
    expect(top).toHaveLength(200)
    expect(top).toEqual([...top].sort((x, y) => x - y))
    // Only resamples of `fast` alone reach 0.9 (then as the highest common level, never below it).
    expect(a.get(0.9)).toEqual([])
    expect(a.get(0.8)!.length).toBeGreaterThan(0)
  })

  it("averages peers' counters at a time, each held from its last point, peers without one left out", () => {
    const peers = [
      [
        { t: 1, merges: 2, steps: 10 },
        { t: 5, merges: 6, steps: 30 },
      ],
      [{ t: 2, merges: 4 }],
      [{ t: 9, merges: 100 }],
    ]
    expect(meanCounterAt(peers, 'merges', 0.5)).toBeNull()
    expect(meanCounterAt(peers, 'merges', 3)).toBe(3) // (2 + 4) / 2: the third has no point yet
    expect(meanCounterAt(peers, 'merges', 5)).toBe(5) // (6 + 4) / 2
    expect(meanCounterAt(peers, 'merges', 10)).toBe(110 / 3)
    expect(meanCounterAt(peers, 'steps', 10)).toBe(30) // only the first peer counts steps
  })
})

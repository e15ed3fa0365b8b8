import { describe, expect, it } from 'vitest'
import { InvalidRttError } from '../../../../src/gossip/topology/rtt.ts'
import {
  type Coordinate,
  distance,
  InvalidCoordinateError,
  isValidCoordinate,
  VIVALDI_DEFAULTS,
  VivaldiClient,
  validateCoordinate,
} from '../../../../src/gossip/topology/vivaldi.ts'
import { createRng } from '../../../../src/util/rng.ts'

/** The project's seeded PRNG, so runs are reproducible. */
const seeded = (seed: number): (() => number) => createRng(seed).next

// The default topology: us-east, eu-west, ap-southeast, four nodes each.
const PER_REGION = 4
const INTER_RTT: Record<string, number> = { '0-1': 70, '0-2': 215, '1-2': 165 }
const region = (i: number): number => Math.floor(i / PER_REGION)
function trueRtt(i: number, j: number): number {
  const a = region(i)
  const b = region(j)
  return a === b ? 10 : INTER_RTT[`${Math.min(a, b)}-${Math.max(a, b)}`]!
}

const isInvalidCoordinate = expect.objectContaining({ name: InvalidCoordinateError.name })

describe('Vivaldi convergence on a 3-region RTT matrix', () => {
  it('predicts RTTs within 15% (median) and its error estimates fall', () => {
    const rnd = seeded(42)
    const n = 3 * PER_REGION
    const nodes = Array.from({ length: n }, () => new VivaldiClient({ random: rnd }))
    const meanError = (): number => nodes.reduce((s, c) => s + c.coordinate.error, 0) / n
    const coords = (): Coordinate[] => nodes.map((c) => c.coordinate)
    const relErrors = (cs: Coordinate[]): number[] => {
      const out: number[] = []
      for (let i = 0; i < n; i++) {
        for (let j = i + 1; j < n; j++)
          out.push(Math.abs(distance(cs[i]!, cs[j]!) - trueRtt(i, j)) / trueRtt(i, j))
      }
      return out.sort((a, b) => a - b)
    }

    expect(meanError()).toBe(VIVALDI_DEFAULTS.errorMax)
    const initialMedian = relErrors(coords())[33]!
    let earlyError = Number.NaN
    for (let round = 1; round <= 200; round++) {
      for (let i = 0; i < n; i++) {
        let j = Math.floor(rnd() * (n - 1))
        if (j >= i) j++
        // +-5% jitter, as pings through a loaded host would show.
        const sample = trueRtt(i, j) * (1 + 0.1 * (rnd() - 0.5))
        nodes[i]!.update(nodes[j]!.coordinate, sample, { peerId: String(j) })
      }
      if (round === 10) earlyError = meanError()
    }

    const cs = coords()
    const errs = relErrors(cs)
    const medianRel = errs[errs.length >> 1]!
    expect(initialMedian).toBeGreaterThan(0.9) // all at the origin: the check below is not vacuous
    expect(medianRel).toBeLessThan(0.15)
    // Error estimates: from the 1.5 of a fresh node, falling, and low at the end.
    expect(earlyError).toBeLessThan(VIVALDI_DEFAULTS.errorMax)
    expect(meanError()).toBeLessThan(earlyError)
    expect(meanError()).toBeLessThan(0.3)
    // What the sampler relies on: every node predicts its own region nearer than any other.
    for (let i = 0; i < n; i++) {
      let maxSame = 0
      let minOther = Number.POSITIVE_INFINITY
      for (let j = 0; j < n; j++) {
        if (j === i) continue
        const d = distance(cs[i]!, cs[j]!)
        if (region(i) === region(j)) maxSame = Math.max(maxSame, d)
        else minOther = Math.min(minOther, d)
      }
      expect(maxSame).toBeLessThan(minOther)
    }
    for (const c of nodes) expect(c.resets).toBe(0)
  })

  it('settles a pair at their RTT and lowers its error', () => {
    const a = new VivaldiClient({ random: seeded(1) })
    const b = new VivaldiClient({ random: seeded(2) })
    for (let k = 0; k < 100; k++) {
      a.update(b.coordinate, 50)
      b.update(a.coordinate, 50)
    }
    expect(distance(a.coordinate, b.coordinate)).toBeCloseTo(50, 0)
    expect(a.distanceTo(b.coordinate)).toBeCloseTo(50, 0)
    expect(a.coordinate.error).toBeLessThan(0.1)
  })
})

describe('VivaldiClient', () => {
  it('starts at the origin with minimum height and maximum error', () => {
    const c = new VivaldiClient({ dimensions: 3 }).coordinate
    expect(c).toEqual({
      vec: [0, 0, 0],
      height: VIVALDI_DEFAULTS.heightMinMs,
      error: VIVALDI_DEFAULTS.errorMax,
    })
  })

  it('moves apart from a coincident node in a seeded random direction', () => {
    const a = new VivaldiClient({ random: seeded(7) })
    const b = new VivaldiClient({ random: seeded(7) })
    const before = a.coordinate
    a.update(b.coordinate, 100)
    expect(a.coordinate.vec).not.toEqual(before.vec)
    expect(distance(a.coordinate, b.coordinate)).toBeGreaterThan(distance(before, b.coordinate))
    // Same seed, same inputs, same result.
    const again = new VivaldiClient({ random: seeded(7) })
    again.update(b.coordinate, 100)
    expect(again.coordinate).toEqual(a.coordinate)
  })

  it('hands out copies of its coordinate', () => {
    const a = new VivaldiClient()
    const c = a.coordinate
    c.vec[0] = 1e5
    expect(a.coordinate.vec[0]).toBe(0)
  })

  it('filters latency per peer: a spike between steady samples is replaced by their median', () => {
    const remote: Coordinate = { vec: [30, 0], height: 1, error: 0.2 }
    const filtered = new VivaldiClient({ random: seeded(3) })
    const plain = new VivaldiClient({ random: seeded(3), latencyFilterSize: 0 })
    for (const s of [50, 50, 9000]) filtered.update(remote, s, { peerId: 'p' })
    for (const s of [50, 50, 50]) plain.update(remote, s)
    expect(filtered.coordinate).toEqual(plain.coordinate)
    // Without a peerId the filter is bypassed: the spike is taken as is.
    const unfiltered = new VivaldiClient({ random: seeded(3) })
    for (const s of [50, 50, 9000]) unfiltered.update(remote, s)
    expect(unfiltered.coordinate).not.toEqual(plain.coordinate)
  })

  it('forgets a peer’s filter samples', () => {
    const remote: Coordinate = { vec: [30, 0], height: 1, error: 0.2 }
    const a = new VivaldiClient({ random: seeded(3) })
    const b = new VivaldiClient({ random: seeded(3), latencyFilterSize: 0 })
    a.update(remote, 9000, { peerId: 'p' })
    b.update(remote, 9000)
    a.forget('p')
    a.update(remote, 40, { peerId: 'p' }) // median of [40] alone, not of [9000, 40]
    b.update(remote, 40)
    expect(a.coordinate).toEqual(b.coordinate)
  })

  it('resets to the origin', () => {
    const a = new VivaldiClient({ random: seeded(1) })
    a.update({ vec: [10, 10], height: 1, error: 0.5 }, 80)
    a.reset()
    expect(a.coordinate).toEqual(new VivaldiClient().coordinate)
  })

  it('keeps gravity weak: it barely changes a converged pair', () => {
    const run = (gravityRhoMs: number): number => {
      const a = new VivaldiClient({ random: seeded(5), gravityRhoMs })
      const b = new VivaldiClient({ random: seeded(6), gravityRhoMs })
      for (let k = 0; k < 100; k++) {
        a.update(b.coordinate, 200)
        b.update(a.coordinate, 200)
      }
      return Math.hypot(...a.coordinate.vec)
    }
    const off = run(Number.POSITIVE_INFINITY)
    const on = run(VIVALDI_DEFAULTS.gravityRhoMs)
    const strong = run(300)
    expect(on).toBeLessThanOrEqual(off)
    expect(off - on).toBeLessThan(1)
    expect(strong).toBeLessThan(on) // the knob does something
  })

  it('rejects invalid remote coordinates and leaves its state untouched', () => {
    const a = new VivaldiClient({ random: seeded(1) })
    a.update({ vec: [5, 5], height: 1, error: 0.5 }, 30)
    const before = a.coordinate
    const bad: unknown[] = [
      null,
      42,
      {},
      { vec: [1, 2, 3], height: 1, error: 0.5 },
      { vec: [1], height: 1, error: 0.5 },
      { vec: [], height: 1, error: 0.5 },
      { vec: [Number.NaN, 0], height: 1, error: 0.5 },
      { vec: [Number.POSITIVE_INFINITY, 0], height: 1, error: 0.5 },
      { vec: ['1', 0], height: 1, error: 0.5 },
      { vec: [1e12, 0], height: 1, error: 0.5 },
      { vec: [1, 0], height: -1, error: 0.5 },
      { vec: [1, 0], height: Number.NaN, error: 0.5 },
      { vec: [1, 0], height: 1, error: -0.1 },
      { vec: [1, 0], height: 1, error: Number.POSITIVE_INFINITY },
      { vec: [1, 0], height: 1 },
    ]
    for (const remote of bad) {
      expect(() => a.update(remote as Coordinate, 30)).toThrow(isInvalidCoordinate)
      expect(() => a.distanceTo(remote as Coordinate)).toThrow(isInvalidCoordinate)
      expect(isValidCoordinate(remote, 2)).toBe(false)
    }
    expect(a.coordinate).toEqual(before)
  })

  it('rejects invalid RTT samples', () => {
    const a = new VivaldiClient()
    const remote: Coordinate = { vec: [1, 0], height: 1, error: 0.5 }
    for (const rtt of [Number.NaN, -1, Number.POSITIVE_INFINITY, 10_001]) {
      expect(() => a.update(remote, rtt)).toThrow(expect.objectContaining({ name: InvalidRttError.name }))
    }
    expect(a.coordinate).toEqual(new VivaldiClient().coordinate)
  })

  it('rejects nonsensical configuration', () => {
    const isArg = expect.objectContaining({ name: 'InvalidArgumentError' })
    expect(() => new VivaldiClient({ dimensions: 0 })).toThrow(isArg)
    expect(() => new VivaldiClient({ cc: 0 })).toThrow(isArg)
    expect(() => new VivaldiClient({ ce: 2 })).toThrow(isArg)
    expect(() => new VivaldiClient({ heightMinMs: 0 })).toThrow(isArg)
  })
})

describe('distance and validation', () => {
  it('is the Euclidean distance plus both heights, and symmetric', () => {
    const a: Coordinate = { vec: [3, 4], height: 1, error: 0.1 }
    const b: Coordinate = { vec: [0, 0], height: 2, error: 0.9 }
    expect(distance(a, b)).toBe(8)
    expect(distance(b, a)).toBe(8)
  })

  it('refuses coordinates of different dimensions', () => {
    expect(() =>
      distance({ vec: [0, 0], height: 1, error: 1 }, { vec: [0, 0, 0], height: 1, error: 1 }),
    ).toThrow(isInvalidCoordinate)
  })

  it('returns a clean copy without extra fields', () => {
    const input = { vec: [1, 2], height: 3, error: 0.5, extra: 'x' }
    const out = validateCoordinate(input, 2)
    expect(out).toEqual({ vec: [1, 2], height: 3, error: 0.5 })
    expect(out.vec).not.toBe(input.vec)
  })
})

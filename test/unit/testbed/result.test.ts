import { describe, expect, it } from 'vitest'
import {
  interRegionShare,
  interRegionShareSince,
  interRegionShareWindows,
  type PeerResult,
  shareWindowNames,
} from '../../../src/testbed/result.ts'

/** A peer whose polls said it had sent `within` / `across` bytes by each time. */
const peer = (points: Array<[t: number, within: number, across: number]>): PeerResult =>
  ({
    bytesSentIntraRegion: points.at(-1)?.[1],
    bytesSentInterRegion: points.at(-1)?.[2],
    series: points.map(([t, within, across]) => ({
      t,
      accuracy: null,
      age: 0,
      modelsReceived: 0,
      bytesSent: within + across,
      steps: 0,
      bytesWithinRegion: within,
      bytesAcrossRegions: across,
    })),
  }) as unknown as PeerResult

describe('interRegionShareSince', () => {
  it('counts only what was sent from the first poll at or after the time on', () => {
    // Early on half crossed regions; from 30 s, 100 of 1000 bytes in a and 300 of 1000 in b.
    const a = peer([
      [0, 0, 0],
      [10, 500, 500],
      [30.4, 500, 500],
      [300, 1400, 600],
    ])
    const b = peer([
      [29.9, 0, 1000],
      [31, 1000, 1000],
      [300, 1700, 1300],
    ])
    expect(interRegionShareSince([a, b], 30)).toBeCloseTo(400 / 2000, 12)
    // The whole run's share counts the early bytes too.
    expect(interRegionShare([a, b])).toBeCloseTo(1900 / 5000, 12)
  })

  it('is null when no series holds the counters or nothing was sent after the time', () => {
    const old = {
      ...peer([[50, 10, 10]]),
      series: [{ t: 50, accuracy: null, age: 0, modelsReceived: 0, bytesSent: 20, steps: 0 }],
    }
    expect(interRegionShareSince([old as PeerResult], 30)).toBeNull()
    expect(interRegionShareSince([peer([[10, 5, 5]])], 30)).toBeNull()
    expect(
      interRegionShareSince(
        [
          peer([
            [40, 5, 5],
            [50, 5, 5],
          ]),
        ],
        30,
      ),
    ).toBeNull()
  })
})

describe('interRegionShareWindows', () => {
  // a: half across in its first 10 s, 100 of 1000 bytes after; b starts late (first poll at 12 s).
  const a = peer([
    [0, 0, 0],
    [9.5, 500, 500],
    [29, 800, 600],
    [300, 1400, 600],
  ])
  const b = peer([
    [12, 100, 300],
    [300, 500, 300],
  ])

  it('counts each window from the last poll at or before its edges, zero before a first poll', () => {
    const [early, mid, late] = interRegionShareWindows([a, b], [0, 10, 30])
    expect(early).toEqual({ fromS: 0, toS: 10, share: 0.5 })
    // a: 300 within + 100 across; b: its 400 bytes by 12 s, 300 across.
    expect(mid!.share).toBeCloseTo(400 / 800, 12)
    // a: 600 within; b: 400 within. Nothing crossed.
    expect(late).toEqual({ fromS: 30, toS: 300, share: 0 })
  })

  it("adds up to the whole run's share and leaves out peers without the counters", () => {
    const old = { ...a, series: a.series.map(({ bytesWithinRegion, bytesAcrossRegions, ...x }) => x) }
    const windows = interRegionShareWindows([a, b, old as PeerResult], [0])
    expect(windows).toHaveLength(1)
    expect(windows[0]!.share).toBeCloseTo(interRegionShare([a, b])!, 12)
  })

  it('is null for a window nothing was sent in, and refuses boundaries that do not rise', () => {
    expect(interRegionShareWindows([a], [300, 400])[0]!.share).toBeNull()
    expect(() => interRegionShareWindows([a], [10, 10])).toThrow(RangeError)
  })
})

describe('shareWindowNames', () => {
  it('names each window from its boundary to the next, the last to the end', () => {
    expect(shareWindowNames([0, 10, 30])).toBe('0-10 / 10-30 / 30-end')
    expect(shareWindowNames([])).toBe('')
  })
})

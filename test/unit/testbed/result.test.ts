import { describe, expect, it } from 'vitest'
import { interRegionShare, interRegionShareSince, type PeerResult } from '../../../src/testbed/result.ts'

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

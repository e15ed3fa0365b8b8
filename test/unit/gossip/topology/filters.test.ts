import { describe, expect, it } from 'vitest'
import { MinFilteredVivaldi, MinRttTracker, RTT_MIN_WINDOW } from '../../../../src/gossip/topology/filters.ts'
import { VivaldiClient } from '../../../../src/gossip/topology/vivaldi.ts'

describe('MinRttTracker', () => {
  it('reports the minimum of the last RTT_MIN_WINDOW samples, per peer', () => {
    const t = new MinRttTracker()
    expect(t.get('a')).toBeUndefined()
    expect(t.record('a', 50)).toBe(50)
    expect(t.record('a', 20)).toBe(20)
    // Queueing only adds delay: a later, slower sample does not raise the estimate.
    expect(t.record('a', 300)).toBe(20)
    expect(t.record('b', 7)).toBe(7)
    expect(t.get('a')).toBe(20)
  })

  it('forgets a minimum once it leaves the window (a route that got slower is seen)', () => {
    const t = new MinRttTracker()
    t.record('a', 5)
    for (let i = 0; i < RTT_MIN_WINDOW - 1; i++) t.record('a', 100 + i)
    expect(t.get('a')).toBe(5)
    t.record('a', 200)
    expect(t.get('a')).toBe(100)
  })

  it('keeps a clean sample through a minute of pings queued behind pushes', () => {
    // A near peer in a 12-peer testbed is pinged about every 7 s; the topology runs' worst
    // pairs had every ping of their last 8 at 90-100 ms on a 10 ms link (docs/BENCHMARKS.md).
    const t = new MinRttTracker()
    t.record('a', 10)
    for (let i = 0; i < 24; i++) t.record('a', 90 + (i % 10))
    expect(t.get('a')).toBe(10)
  })
})

describe('MinFilteredVivaldi', () => {
  const remote = { vec: [100, 0], height: 0.01, error: 0.1 }

  it('moves by the tracked minimum for the named peer, not by the raw (queued) sample', () => {
    const tracker = new MinRttTracker()
    const filtered = new MinFilteredVivaldi(tracker)
    const minOnly = new VivaldiClient({ latencyFilterSize: 0, random: () => 0.5 })
    const raw = new VivaldiClient({ latencyFilterSize: 0, random: () => 0.5 })
    // The daemon's TopologyService records each sample in the tracker before updating Vivaldi.
    tracker.record('p', 40)
    filtered.update(remote, 40, { peerId: 'p' })
    minOnly.update(remote, 40)
    raw.update(remote, 40)
    tracker.record('p', 400)
    const got = filtered.update(remote, 400, { peerId: 'p' })
    const expected = minOnly.update(remote, 40)
    const unfiltered = raw.update(remote, 400)
    expect(got.vec[0]).toBeCloseTo(expected.vec[0]!, 9)
    expect(Math.abs(got.vec[0]! - unfiltered.vec[0]!)).toBeGreaterThan(1)
  })

  it('uses the raw sample when no peer is named', () => {
    const filtered = new MinFilteredVivaldi(new MinRttTracker())
    const plain = new VivaldiClient({ latencyFilterSize: 0 })
    const a = filtered.update(remote, 80)
    const b = plain.update(remote, 80)
    expect(a.height).toBeCloseTo(b.height, 9)
    expect(Math.hypot(...a.vec)).toBeCloseTo(Math.hypot(...b.vec), 6)
  })
})

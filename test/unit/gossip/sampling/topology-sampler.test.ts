import { describe, expect, it } from 'vitest'
import type { PeerEntry } from '../../../../src/gossip/sampling/sampler.ts'
import {
  TopologySampler,
  type TopologySamplerInit,
} from '../../../../src/gossip/sampling/topology-sampler.ts'
import type { Coordinate } from '../../../../src/gossip/topology/vivaldi.ts'
import { createRng } from '../../../../src/util/rng.ts'

/** The project's seeded PRNG, so runs are reproducible. */
const seeded = (seed: number): (() => number) => createRng(seed).next

const NOW = 1_000_000
const ORIGIN: Coordinate = { vec: [0, 0], height: 1, error: 0.2 }

function sampler(init: Partial<TopologySamplerInit> = {}, seed = 1): TopologySampler {
  return new TopologySampler({ localCoordinate: () => ORIGIN, now: () => NOW, random: seeded(seed), ...init })
}

function peer(peerId: string, fields: Partial<PeerEntry> = {}): PeerEntry {
  return { peerId, lastSeen: NOW - 100, ...fields }
}

/** 3 near peers (10 ms) and 8 far ones (200 ms), by measured RTT. */
const NEAR = ['n0', 'n1', 'n2'].map((id) => peer(id, { rttMs: 10 }))
const FAR = Array.from({ length: 8 }, (_, i) => peer(`f${i}`, { rttMs: 200 }))
const VIEW = [...NEAR, ...FAR]

/** Share of far picks a single-slot sample should show, from the documented rule. */
function expectedFarRate(randomShare: number, exponent: number): number {
  const wNear = NEAR.length * 10 ** -exponent
  const wFar = FAR.length * 200 ** -exponent
  return randomShare * (FAR.length / VIEW.length) + (1 - randomShare) * (wFar / (wNear + wFar))
}

function farRate(s: TopologySampler, draws: number): number {
  let far = 0
  for (let k = 0; k < draws; k++) if (s.sample(VIEW, 1)[0]!.peerId.startsWith('f')) far++
  return far / draws
}

describe('TopologySampler', () => {
  it('picks far peers at the rate the random share and the weights give', () => {
    const draws = 20_000
    for (const randomShare of [0, 0.25, 0.5, 1]) {
      const rate = farRate(sampler({ randomShare }, 11), draws)
      // sd is at most 0.0035 at 20 000 draws: 0.02 is a generous bound that still tells the cases apart.
      expect(Math.abs(rate - expectedFarRate(randomShare, 2))).toBeLessThan(0.02)
    }
    expect(farRate(sampler({ randomShare: 0 }, 12), draws)).toBeLessThan(0.02)
    expect(farRate(sampler({ randomShare: 0.25 }, 12), draws)).toBeGreaterThan(0.15)
  })

  it('weights near picks by 1/rtt^exponent', () => {
    const rate = farRate(sampler({ randomShare: 0, exponent: 1 }, 13), 20_000)
    expect(Math.abs(rate - expectedFarRate(0, 1))).toBeLessThan(0.02)
    const flat = farRate(sampler({ randomShare: 0, exponent: 0 }, 13), 20_000)
    expect(Math.abs(flat - FAR.length / VIEW.length)).toBeLessThan(0.02)
  })

  it('predicts RTT from Vivaldi coordinates when it has not measured it', () => {
    const near = (id: string): PeerEntry => peer(id, { coordinate: { vec: [5, 0], height: 1, error: 0.2 } })
    const far = (id: string): PeerEntry => peer(id, { coordinate: { vec: [0, 180], height: 1, error: 0.2 } })
    const view = [near('a'), near('b'), far('x'), far('y'), far('z')]
    const s = sampler({ randomShare: 0 }, 21)
    expect(s.estimateRtt(view[0]!)).toBe(7)
    expect(s.estimateRtt(view[2]!)).toBe(182)
    let nearPicks = 0
    for (let k = 0; k < 2000; k++) if (['a', 'b'].includes(s.sample(view, 1)[0]!.peerId)) nearPicks++
    expect(nearPicks / 2000).toBeGreaterThan(0.95)
  })

  it('prefers a measured RTT over the coordinate prediction', () => {
    const s = sampler()
    const p = peer('a', { rttMs: 150, coordinate: { vec: [1, 0], height: 1, error: 0.2 } })
    expect(s.estimateRtt(p)).toBe(150)
    expect(s.estimateRtt(peer('b'))).toBeUndefined()
    // A coordinate of another dimension cannot be compared: unknown, not an exception.
    expect(
      s.estimateRtt(peer('c', { coordinate: { vec: [1, 2, 3], height: 1, error: 0.2 } })),
    ).toBeUndefined()
    expect(
      s.estimateRtt(peer('d', { coordinate: { vec: [Number.NaN, 0], height: 1, error: 0.2 } })),
    ).toBeUndefined()
  })

  it('gives peers of unknown RTT only the uniform picks', () => {
    const view = [peer('known', { rttMs: 10 }), ...Array.from({ length: 4 }, (_, i) => peer(`u${i}`))]
    const s = sampler({ randomShare: 0.25 }, 31)
    let unknown = 0
    const draws = 20_000
    for (let k = 0; k < draws; k++) if (s.sample(view, 1)[0]!.peerId.startsWith('u')) unknown++
    expect(Math.abs(unknown / draws - 0.25 * (4 / 5))).toBeLessThan(0.02)
  })

  it('falls back to uniform picks when nothing is known or our coordinate is unusable', () => {
    const view = Array.from({ length: 4 }, (_, i) =>
      peer(`p${i}`, { coordinate: { vec: [i * 50, 0], height: 1, error: 0.2 } }),
    )
    for (const localCoordinate of [
      () => undefined,
      () => ({ vec: [Number.NaN, 0], height: 1, error: 1 }),
      () => {
        throw new Error('not ready')
      },
    ]) {
      const s = sampler({ randomShare: 0, localCoordinate }, 41)
      const counts = new Map<string, number>()
      for (let k = 0; k < 8000; k++) {
        const id = s.sample(view, 1)[0]!.peerId
        counts.set(id, (counts.get(id) ?? 0) + 1)
      }
      for (const p of view) expect(Math.abs(counts.get(p.peerId)! / 8000 - 0.25)).toBeLessThan(0.03)
    }
  })

  it('gives each fresh peer the chance of one pick that sample() shows', () => {
    const s = sampler({ randomShare: 0.25 }, 61)
    const shares = s.shares(VIEW)
    expect(shares.size).toBe(VIEW.length)
    expect([...shares.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10)
    const draws = 20_000
    const hits = new Map<string, number>()
    for (let k = 0; k < draws; k++) {
      const id = s.sample(VIEW, 1)[0]!.peerId
      hits.set(id, (hits.get(id) ?? 0) + 1)
    }
    // sd of one peer's rate is at most 0.0035 at 20 000 draws.
    for (const p of VIEW)
      expect(Math.abs((hits.get(p.peerId) ?? 0) / draws - shares.get(p.peerId)!)).toBeLessThan(0.015)
    // A near peer gets about 0.25 / 11 + 0.75 / 3, a far one about 0.25 / 11.
    expect(shares.get('n0')!).toBeGreaterThan(0.25)
    expect(shares.get('f0')!).toBeLessThan(0.03)
  })

  it('gives a peer whose RTT it only predicts from an announced coordinate no more than 1 / n', () => {
    // A coordinate next to ours is what a sender wanting a larger fair share of our merges would announce.
    const liar = peer('liar', { coordinate: { vec: [0, 0], height: 0, error: 0.01 } })
    const view = [liar, ...VIEW]
    const shares = sampler({ randomShare: 0.1 }).shares(view)
    expect(shares.get('liar')).toBeCloseTo(1 / view.length, 12)
    // Its predicted nearness still takes near picks in sample(), so the measured peers' shares shrink.
    expect(shares.get('n0')!).toBeLessThan(sampler({ randomShare: 0.1 }).shares(VIEW).get('n0')!)
    // Stale peers have no share; an empty view has none.
    expect(sampler().shares([peer('old', { rttMs: 10, lastSeen: 0 })]).size).toBe(0)
    expect(sampler().shares([]).size).toBe(0)
  })

  it('never picks stale peers, even the nearest', () => {
    const stale = [
      peer('stale-near', { rttMs: 1, lastSeen: NOW - 10_001 }),
      peer('stale-old', { rttMs: 5, lastSeen: 0 }),
      peer('stale-nan', { rttMs: 5, lastSeen: Number.NaN }),
    ]
    const view = [...stale, ...VIEW]
    const s = sampler({ maxAgeMs: 10_000 }, 51)
    for (let k = 0; k < 2000; k++) {
      for (const p of s.sample(view, 4)) expect(p.peerId.startsWith('stale')).toBe(false)
    }
    expect(s.sample(view, 100)).toHaveLength(VIEW.length)
    expect(s.sample(stale, 3)).toEqual([])
    // At exactly maxAgeMs a peer still counts as alive.
    expect(s.sample([peer('edge', { lastSeen: NOW - 10_000 })], 1)).toHaveLength(1)
  })

  it("keeps a peer for its entry's ttlMs when that is longer than maxAgeMs (a large network announces slowly)", () => {
    let now = NOW
    const s = sampler({ now: () => now, maxAgeMs: 10_000 }, 53)
    // A 120-peer network: each peer announces every 60 s, so membership keeps entries for 180 s.
    const view = [peer('slow', { lastSeen: NOW, ttlMs: 180_000 }), peer('plain', { lastSeen: NOW })]
    now = NOW + 30_000
    for (let k = 0; k < 50; k++) expect(s.sample(view, 2).map((p) => p.peerId)).toEqual(['slow'])
    now = NOW + 180_001
    expect(s.sample(view, 2)).toEqual([])
    // A shorter ttlMs does not shorten maxAgeMs, and garbage does not keep a peer alive.
    now = NOW + 8000
    expect(s.sample([peer('short', { lastSeen: NOW, ttlMs: 1000 })], 1)).toHaveLength(1)
    expect(s.sample([peer('nan', { lastSeen: NOW, ttlMs: Number.NaN })], 1)).toEqual([])
  })

  it('drops a peer once it goes quiet, as the clock advances', () => {
    let now = NOW
    const s = sampler({ now: () => now, maxAgeMs: 3000 }, 52)
    const view = [peer('a', { lastSeen: NOW }), peer('b', { lastSeen: NOW + 2500 })]
    expect(s.sample(view, 2)).toHaveLength(2)
    now = NOW + 3001
    expect(s.sample(view, 2).map((p) => p.peerId)).toEqual(['b'])
  })

  it('picks a newly added peer once it is in the view', () => {
    // Unmeasured and without a coordinate, it is reached by uniform picks only: 2 x 0.25 / 12 a sample.
    const s = sampler({ randomShare: 0.25 }, 61)
    const newcomer = peer('new') // announced, not yet pinged, no coordinate
    let picked = 0
    for (let k = 0; k < 500; k++) if (s.sample(VIEW, 2).some((p) => p.peerId === 'new')) picked++
    expect(picked).toBe(0)
    for (let k = 0; k < 500; k++)
      if (s.sample([...VIEW, newcomer], 2).some((p) => p.peerId === 'new')) picked++
    expect(picked).toBeGreaterThan(10)
    // Once it announces a near coordinate it is mostly a near pick.
    const near = { ...newcomer, coordinate: { vec: [2, 0], height: 1, error: 0.2 } }
    let nearPicked = 0
    for (let k = 0; k < 500; k++)
      if (s.sample([...VIEW, near], 2).some((p) => p.peerId === 'new')) nearPicked++
    expect(nearPicked).toBeGreaterThan(picked)
  })

  it('returns distinct peers, at most count, one per peerId', () => {
    const s = sampler({}, 71)
    const dupes = [
      ...VIEW,
      peer('n0', { rttMs: 10, lastSeen: NOW - 5 }),
      peer('f0', { rttMs: 200, lastSeen: NOW }),
    ]
    for (const count of [1, 3, 5, 11, 50]) {
      for (let k = 0; k < 200; k++) {
        const picks = s.sample(dupes, count)
        expect(picks).toHaveLength(Math.min(count, VIEW.length))
        expect(new Set(picks.map((p) => p.peerId)).size).toBe(picks.length)
      }
    }
    // The most recently seen entry of a duplicated peer is the one returned.
    const only = s.sample([peer('x', { lastSeen: NOW - 500 }), peer('x', { lastSeen: NOW - 1, rttMs: 3 })], 5)
    expect(only).toEqual([peer('x', { lastSeen: NOW - 1, rttMs: 3 })])
    expect(s.sample(VIEW, 0)).toEqual([])
    expect(s.sample(VIEW, -2)).toEqual([])
    expect(s.sample([], 3)).toEqual([])
  })

  it('is reproducible with the same seed', () => {
    const a = sampler({}, 81)
    const b = sampler({}, 81)
    for (let k = 0; k < 50; k++) expect(a.sample(VIEW, 3)).toEqual(b.sample(VIEW, 3))
  })

  it('rejects nonsensical configuration', () => {
    const isArg = expect.objectContaining({ name: 'InvalidArgumentError' })
    expect(() => sampler({ randomShare: 1.5 })).toThrow(isArg)
    expect(() => sampler({ randomShare: Number.NaN })).toThrow(isArg)
    expect(() => sampler({ exponent: -1 })).toThrow(isArg)
    expect(() => sampler({ minRttMs: 0 })).toThrow(isArg)
    expect(() => sampler({ maxAgeMs: -1 })).toThrow(isArg)
  })
})

import { describe, expect, it } from 'vitest'
import { PartnerSampler } from '../../../../src/gossip/sampling/partners.ts'
import { type PeerEntry, UniformSampler } from '../../../../src/gossip/sampling/sampler.ts'
import { createRng } from '../../../../src/util/rng.ts'

const peers = (ids: string[]): PeerEntry[] => ids.map((peerId) => ({ peerId, lastSeen: 0 }))
const ALL = peers(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])

describe('PartnerSampler', () => {
  it('pushes only to the partners it keeps, whatever the view offers', () => {
    const rng = createRng(1)
    const s = new PartnerSampler(new UniformSampler({ random: () => rng.next() }), {
      partners: 3,
      random: () => rng.next(),
      now: () => 0,
    })
    const hits = new Map<string, number>()
    for (let i = 0; i < 200; i++) {
      for (const p of s.sample(ALL, 2)) hits.set(p.peerId, (hits.get(p.peerId) ?? 0) + 1)
    }
    expect(s.current()).toHaveLength(3)
    expect([...hits.keys()].sort()).toEqual([...s.current()].sort())
    // Uniform among them: 400 picks over 3 partners.
    for (const n of hits.values()) expect(n).toBeGreaterThan(100)
  })

  it('keeps a partner missing from a few views (a push in flight) and replaces it after the grace period', () => {
    let now = 0
    const s = new PartnerSampler(new UniformSampler({ random: () => 0 }), {
      partners: 2,
      graceMs: 30_000,
      random: () => 0,
      now: () => now,
    })
    s.sample(ALL, 1)
    const [first, second] = s.current() as [string, string]
    const without = ALL.filter((p) => p.peerId !== first)
    now = 10_000
    expect(s.sample(without, 2).map((p) => p.peerId)).toEqual([second])
    expect(s.current()).toContain(first)
    now = 45_000
    s.sample(without, 2)
    expect(s.current()).not.toContain(first)
    expect(s.current()).toHaveLength(2)
  })

  it('tops up from the underlying sampler and refuses a count below 1', () => {
    const s = new PartnerSampler(new UniformSampler(), { partners: 4 })
    expect(s.sample(peers(['a', 'b']), 4)).toHaveLength(2)
    expect(s.sample(ALL, 8)).toHaveLength(4)
    expect(() => new PartnerSampler(new UniformSampler(), { partners: 0 })).toThrow(/partners/)
  })
})

import { describe, expect, it } from 'vitest'
import { type PeerEntry, UniformSampler } from '../../../../src/gossip/sampling/sampler.ts'
import { createRng } from '../../../../src/util/rng.ts'

const view = (n: number): PeerEntry[] =>
  Array.from({ length: n }, (_, i) => ({ peerId: `p${i}`, lastSeen: 0 }))

describe('UniformSampler', () => {
  it('returns distinct peers, at most count', () => {
    const s = new UniformSampler({ random: createRng(1).next })
    for (let k = 0; k < 50; k++) {
      const picked = s.sample(view(5), 3).map((p) => p.peerId)
      expect(picked).toHaveLength(3)
      expect(new Set(picked).size).toBe(3)
    }
    expect(s.sample(view(2), 5)).toHaveLength(2)
    expect(s.sample([], 1)).toEqual([])
  })

  it('picks every peer about equally often', () => {
    const s = new UniformSampler({ random: createRng(2).next })
    const counts = new Map<string, number>()
    for (let k = 0; k < 4000; k++) {
      const [p] = s.sample(view(4), 1)
      counts.set(p!.peerId, (counts.get(p!.peerId) ?? 0) + 1)
    }
    for (const c of counts.values()) expect(c).toBeGreaterThan(850)
    expect(counts.size).toBe(4)
  })
})

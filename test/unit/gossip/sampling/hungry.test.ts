import { describe, expect, it } from 'vitest'
import { HungrySampler } from '../../../../src/gossip/sampling/hungry.ts'
import { type PeerEntry, type PeerSampler, UniformSampler } from '../../../../src/gossip/sampling/sampler.ts'
import { createRng } from '../../../../src/util/rng.ts'

const peers = (n: number, hungry: ReadonlySet<number> = new Set()): PeerEntry[] =>
  Array.from({ length: n }, (_, i) => ({ peerId: `p${i}`, lastSeen: 0, hungry: hungry.has(i) }))

/** How often each peer is among `count` targets over `rounds` samples. */
function picks(s: PeerSampler, view: PeerEntry[], count: number, rounds: number): Map<string, number> {
  const hits = new Map<string, number>()
  for (let i = 0; i < rounds; i++) {
    const chosen = s.sample(view, count)
    expect(new Set(chosen.map((p) => p.peerId)).size).toBe(chosen.length)
    for (const p of chosen) hits.set(p.peerId, (hits.get(p.peerId) ?? 0) + 1)
  }
  return hits
}

describe('HungrySampler', () => {
  it('gives a lone hungry peer several times the pushes of another, and the others what is left', () => {
    const rng = createRng(7)
    const random = () => rng.next()
    const s = new HungrySampler(new UniformSampler({ random }), { boost: 4, random })
    const view = peers(40, new Set([3]))
    const rounds = 20_000
    const hits = picks(s, view, 2, rounds)
    const hungry = hits.get('p3') ?? 0
    const others = [...hits].filter(([id]) => id !== 'p3').map(([, n]) => n)
    const mean = others.reduce((a, b) => a + b, 0) / others.length
    // Uniform alone: 2/40 of the rounds each (1000). The hungry slot adds 4/40 of the rounds.
    expect(hungry / mean).toBeGreaterThan(2.5)
    expect(hungry / mean).toBeLessThan(3.5)
    expect(hungry + others.reduce((a, b) => a + b, 0)).toBe(2 * rounds)
  })

  it('does not give every round to hungry peers when many are hungry (a start-up)', () => {
    const rng = createRng(11)
    const random = () => rng.next()
    const s = new HungrySampler(new UniformSampler({ random }), { boost: 4, random })
    const view = peers(40, new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
    const hits = picks(s, view, 1, 20_000)
    const toHungry = [...hits].filter(([id]) => Number(id.slice(1)) < 10).reduce((n, [, k]) => n + k, 0)
    // Weighted slot: 40 / (40 + 30) = 0.571, plus a quarter of the rest: 0.679 of the rounds.
    expect(toHungry / 20_000).toBeGreaterThan(0.64)
    expect(toHungry / 20_000).toBeLessThan(0.72)
  })

  it('samples as its base does when nobody or everybody is hungry, or with boost 1', () => {
    const base: PeerSampler = { sample: (view, count) => view.slice(0, count) }
    const s = new HungrySampler(base, { boost: 4, random: () => 0 })
    expect(s.sample(peers(5), 2).map((p) => p.peerId)).toEqual(['p0', 'p1'])
    expect(s.sample(peers(3, new Set([0, 1, 2])), 2).map((p) => p.peerId)).toEqual(['p0', 'p1'])
    const off = new HungrySampler(base, { boost: 1, random: () => 0 })
    expect(off.sample(peers(5, new Set([4])), 2).map((p) => p.peerId)).toEqual(['p0', 'p1'])
    // On: the hungry peer takes the first slot and the base fills the rest without it.
    expect(s.sample(peers(5, new Set([4])), 2).map((p) => p.peerId)).toEqual(['p4', 'p0'])
    expect(s.sample(peers(5, new Set([4])), 0)).toEqual([])
  })

  it('gives its first slot to a peer it holds a connection to while stranded, and only then', () => {
    const rng = createRng(3)
    const random = () => rng.next()
    let stranded = true
    const s = new HungrySampler(new UniformSampler({ random }), { random, stranded: () => stranded })
    const view = peers(30).map((p, i) => ({ ...p, connected: i === 5 || i === 9 }))
    for (let i = 0; i < 50; i++) {
      const [first, ...rest] = s.sample(view, 2)
      expect(['p5', 'p9']).toContain(first!.peerId)
      expect(rest).toHaveLength(1)
      expect(rest[0]!.peerId).not.toBe(first!.peerId)
    }
    // No held connection in the view: as if not stranded.
    expect(s.sample(peers(30), 2)).toHaveLength(2)
    stranded = false
    const firsts = new Set(Array.from({ length: 200 }, () => s.sample(view, 1)[0]!.peerId))
    expect(firsts.size).toBeGreaterThan(10)
  })

  it("reports its base sampler's shares, and none when the base has none", () => {
    const view = peers(4, new Set([1]))
    const base: PeerSampler = {
      sample: (v, n) => v.slice(0, n),
      shares: (v) => new Map(v.map((p, i) => [p.peerId, i === 0 ? 0.7 : 0.1])),
    }
    expect(new HungrySampler(base, { boost: 4 }).shares(view)?.get('p0')).toBe(0.7)
    expect(new HungrySampler(new UniformSampler()).shares(view)).toBeUndefined()
  })

  it('refuses a boost below 1', () => {
    expect(() => new HungrySampler(new UniformSampler(), { boost: 0.5 })).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
    expect(() => new HungrySampler(new UniformSampler(), { boost: Number.NaN })).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
  })
})

import { describe, expect, it } from 'vitest'
import { loadMnistLabels } from '../../../src/data/mnist.ts'
import { formatPartitionSpec, parsePartitionSpec, partition } from '../../../src/data/partition.ts'

const labels = loadMnistLabels('train')

function expectExactCover(parts: number[][], n: number): void {
  const seen = new Uint8Array(n)
  let duplicates = 0
  for (const part of parts) {
    for (const i of part) {
      if (seen[i] === 1) duplicates++
      seen[i] = 1
    }
  }
  expect(duplicates).toBe(0)
  expect(seen.every((v) => v === 1)).toBe(true)
}

/** Fraction of a peer's samples that belong to its most common class. */
function dominantShare(part: number[]): number {
  const counts = new Array(10).fill(0)
  for (const i of part) counts[labels[i]]++
  return Math.max(...counts) / part.length
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length

describe('partition', () => {
  it.each(['iid', 'dirichlet:0.5', 'dirichlet:0.05', 'shards:2'])(
    '%s: disjoint, covering, sorted, non-empty',
    (spec) => {
      const parts = partition(labels, { spec, peers: 10, seed: 1 })
      expect(parts).toHaveLength(10)
      expectExactCover(parts, labels.length)
      for (const p of parts) {
        expect(p.length).toBeGreaterThan(0)
        expect(p.every((v, k) => k === 0 || v > p[k - 1])).toBe(true)
      }
    },
  )

  it.each(['iid', 'dirichlet:0.3', 'shards:3'])(
    '%s: deterministic for a seed, different across seeds',
    (spec) => {
      const a = partition(labels, { spec, peers: 7, seed: 5 })
      const b = partition(labels, { spec, peers: 7, seed: 5 })
      const c = partition(labels, { spec, peers: 7, seed: 6 })
      expect(a).toEqual(b)
      expect(a).not.toEqual(c)
    },
  )

  it('iid: equal sizes and near-global label mix', () => {
    const parts = partition(labels, { spec: 'iid', peers: 8, seed: 2 })
    for (const p of parts) expect(p.length).toBe(7500)
    // Global dominant class (1) is ~11%; iid shares stay close to it.
    for (const p of parts) expect(dominantShare(p)).toBeLessThan(0.13)
  })

  it('dirichlet: small alpha skews labels, large alpha does not', () => {
    const skewed = partition(labels, { spec: 'dirichlet:0.1', peers: 10, seed: 3 })
    const flat = partition(labels, { spec: 'dirichlet:100', peers: 10, seed: 3 })
    // iid would give ~0.11 (see above).
    expect(mean(skewed.map(dominantShare))).toBeGreaterThan(0.35)
    expect(mean(flat.map(dominantShare))).toBeLessThan(0.15)
  })

  it('dirichlet: every peer gets at least the minimum, even for tiny alpha and many peers', () => {
    const parts = partition(labels, { spec: 'dirichlet:0.001', peers: 100, seed: 4 })
    expectExactCover(parts, labels.length)
    for (const p of parts) expect(p.length).toBeGreaterThanOrEqual(10)
    const few = partition(labels.subarray(0, 30), {
      spec: 'dirichlet:0.01',
      peers: 10,
      seed: 4,
      minPerPeer: 10,
    })
    expectExactCover(few, 30)
    for (const p of few) expect(p.length).toBeGreaterThanOrEqual(3)
  })

  it('shards: equal sizes and few labels per peer', () => {
    const parts = partition(labels, { spec: 'shards:2', peers: 20, seed: 5 })
    for (const p of parts) {
      expect(p.length).toBe(3000)
      // Two shards of 1500 sorted samples: each spans at most two classes.
      expect(new Set(p.map((i) => labels[i])).size).toBeLessThanOrEqual(4)
    }
  })

  it('rejects impossible requests', () => {
    expect(() => partition(labels.subarray(0, 5), { spec: 'iid', peers: 6, seed: 1 })).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
    expect(() => partition(labels, { spec: 'iid', peers: 0, seed: 1 })).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
    expect(() => partition(labels.subarray(0, 10), { spec: 'shards:3', peers: 4, seed: 1 })).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
  })
})

describe('parsePartitionSpec', () => {
  it('parses the three forms and round-trips through formatPartitionSpec', () => {
    expect(parsePartitionSpec('iid')).toEqual({ kind: 'iid' })
    expect(parsePartitionSpec('dirichlet:0.5')).toEqual({ kind: 'dirichlet', alpha: 0.5 })
    expect(parsePartitionSpec(' shards:2 ')).toEqual({ kind: 'shards', shardsPerPeer: 2 })
    for (const s of ['iid', 'dirichlet:0.25', 'shards:4'])
      expect(formatPartitionSpec(parsePartitionSpec(s))).toBe(s)
  })

  it.each([
    '',
    'IID',
    'iid:2',
    'dirichlet',
    'dirichlet:',
    'dirichlet:0',
    'dirichlet:-1',
    'dirichlet:abc',
    'dirichlet:Infinity',
    'dirichlet:1:2',
    'shards',
    'shards:0',
    'shards:1.5',
    'random',
  ])('rejects %j with InvalidArgumentError', (spec) => {
    expect(() => parsePartitionSpec(spec)).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
  })
})

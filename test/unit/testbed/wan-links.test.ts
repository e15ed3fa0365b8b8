import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  assignRegions,
  DEFAULT_WAN_LINKS,
  defaultRegionCounts,
  loadWanLinks,
  MATHIS_C,
  mathisThroughputMbps,
  parseRegionCounts,
  parseWanLinks,
  regionLoss,
  regionRttMs,
  regionThroughputMbps,
  saveWanLinks,
  testbedLinks,
} from '../../../src/testbed/wan-links.ts'

describe('links file', () => {
  it('accepts the default topology and looks up RTTs in either order', () => {
    const links = parseWanLinks(DEFAULT_WAN_LINKS)
    expect(regionRttMs(links, 'us-east', 'eu-west')).toBe(70)
    expect(regionRttMs(links, 'ap-southeast', 'us-east')).toBe(215)
    expect(regionRttMs(links, 'eu-west', 'eu-west')).toBe(10)
    // The raw default (not normalised by parseWanLinks) answers in both orders too.
    expect(regionRttMs(DEFAULT_WAN_LINKS, 'ap-southeast', 'us-east')).toBe(215)
    expect(regionRttMs(DEFAULT_WAN_LINKS, 'us-east', 'ap-southeast')).toBe(215)
    expect(() => regionRttMs(links, 'us-east', 'mars')).toThrow(
      expect.objectContaining({ name: 'InvalidWanLinksError' }),
    )
    expect(links.uplinkMbps).toBe(20)
    expect(defaultRegionCounts(links)).toEqual([
      { region: 'us-east', count: 4 },
      { region: 'eu-west', count: 4 },
      { region: 'ap-southeast', count: 4 },
    ])
  })

  it('accepts reversed pair keys and defaults the uplink', () => {
    const links = parseWanLinks({ regions: { a: {}, b: {} }, rttMs: { 'a|a': 1, 'b|b': 2, 'b|a': 30 } })
    expect(regionRttMs(links, 'a', 'b')).toBe(30)
    expect(links.uplinkMbps).toBe(20)
  })

  it.each([
    ['not an object', 42],
    ['no regions', { regions: {}, rttMs: {} }],
    ['missing pair', { regions: { a: {}, b: {} }, rttMs: { 'a|a': 1, 'b|b': 1 } }],
    ['missing same-region pair', { regions: { a: {}, b: {} }, rttMs: { 'a|a': 1, 'a|b': 1 } }],
    ['unknown region in rttMs', { regions: { a: {} }, rttMs: { 'a|a': 1, 'a|z': 3 } }],
    [
      'conflicting duplicate',
      { regions: { a: {}, b: {} }, rttMs: { 'a|a': 1, 'b|b': 1, 'a|b': 5, 'b|a': 6 } },
    ],
    ['negative rtt', { regions: { a: {} }, rttMs: { 'a|a': -1 } }],
    ['non-numeric rtt', { regions: { a: {} }, rttMs: { 'a|a': '5' } }],
    ['zero uplink', { regions: { a: {} }, rttMs: { 'a|a': 1 }, uplinkMbps: 0 }],
    ['bad region name', { regions: { 'a|b': {} }, rttMs: {} }],
    ['peer in unknown region', { regions: { a: {} }, rttMs: { 'a|a': 1 }, peers: { p: 'b' } }],
    ['bad region uplink', { regions: { a: { uplinkMbps: -3 } }, rttMs: { 'a|a': 1 } }],
  ])('rejects %s', (_label, value) => {
    expect(() => parseWanLinks(value)).toThrow(expect.objectContaining({ name: 'InvalidWanLinksError' }))
  })

  it('defaults the loss rate and takes per-pair loss and throughput overrides in either key order', () => {
    const links = parseWanLinks({
      regions: { a: {}, b: {}, c: {} },
      rttMs: { 'a|a': 10, 'b|b': 10, 'c|c': 10, 'a|b': 100, 'a|c': 100, 'b|c': 100 },
      lossByPair: { 'b|a': 0.015 },
      throughputMbps: { 'c|a': 3 },
    })
    expect(links.loss).toBe(0.001)
    expect(regionLoss(links, 'a', 'b')).toBe(0.015)
    expect(regionLoss(links, 'b', 'c')).toBe(0.001)
    // a|b: Mathis at 100 ms and 1.5 %: C / sqrt(p) = sqrt(1.5 / 0.015) = 10, so 10 x 1460 B x 8 / 0.1 s = 1.168 Mbit/s.
    expect(regionThroughputMbps(links, 'b', 'a')).toBeCloseTo(1.168, 6)
    // a|c: the explicit figure wins over the formula.
    expect(regionThroughputMbps(links, 'a', 'c')).toBe(3)
    // Loss 0 caps nothing.
    const lossless = parseWanLinks({ regions: { a: {} }, rttMs: { 'a|a': 50 }, loss: 0 })
    expect(regionThroughputMbps(lossless, 'a', 'a')).toBe(Number.POSITIVE_INFINITY)
  })

  it('gives the default topology Mathis figures at 0.1 % loss: near pairs above the uplink, far pairs below', () => {
    // C / sqrt(0.001) = 1.22474 / 0.0316228 = 38.730; MSS / RTT: 11 680 bit / 0.07 s = 166 857 bit/s.
    expect(regionThroughputMbps(DEFAULT_WAN_LINKS, 'us-east', 'eu-west')).toBeCloseTo(6.4623, 3)
    // 11 680 / 0.215 = 54 326 bit/s x 38.730 = 2.1040 Mbit/s.
    expect(regionThroughputMbps(DEFAULT_WAN_LINKS, 'ap-southeast', 'us-east')).toBeCloseTo(2.104, 3)
    // 11 680 / 0.01 = 1.168 Mbit/s x 38.730 = 45.236 Mbit/s: above the 20 Mbit/s uplink.
    expect(regionThroughputMbps(DEFAULT_WAN_LINKS, 'eu-west', 'eu-west')).toBeCloseTo(45.236, 2)
  })

  it.each([
    ['loss of 1', { loss: 1 }],
    ['negative loss', { loss: -0.01 }],
    ['non-numeric loss', { loss: '0.1%' }],
    ['pair loss out of range', { lossByPair: { 'a|b': 2 } }],
    ['pair loss on an unknown region', { lossByPair: { 'a|z': 0.01 } }],
    ['pair loss with a bad key', { lossByPair: { a: 0.01 } }],
    ['conflicting pair losses', { lossByPair: { 'a|b': 0.01, 'b|a': 0.02 } }],
    ['zero throughput', { throughputMbps: { 'a|b': 0 } }],
    ['infinite throughput', { throughputMbps: { 'a|a': Number.POSITIVE_INFINITY } }],
    ['throughput as a list', { throughputMbps: [5] }],
  ])('rejects %s', (_label, extra) => {
    const value = { regions: { a: {}, b: {} }, rttMs: { 'a|a': 1, 'b|b': 1, 'a|b': 50 }, ...extra }
    expect(() => parseWanLinks(value)).toThrow(expect.objectContaining({ name: 'InvalidWanLinksError' }))
  })

  it('parses --regions specs and assigns peers in block or interleaved order', () => {
    const counts = parseRegionCounts('us-east:2, eu-west:1,ap-southeast:1')
    expect(counts).toEqual([
      { region: 'us-east', count: 2 },
      { region: 'eu-west', count: 1 },
      { region: 'ap-southeast', count: 1 },
    ])
    const ids = ['p0', 'p1', 'p2', 'p3']
    expect(assignRegions(ids, counts)).toEqual({
      p0: 'us-east',
      p1: 'us-east',
      p2: 'eu-west',
      p3: 'ap-southeast',
    })
    expect(assignRegions(ids, counts, { order: 'interleave' })).toEqual({
      p0: 'us-east',
      p1: 'eu-west',
      p2: 'ap-southeast',
      p3: 'us-east',
    })
  })

  it.each(['us-east', 'us-east:x', 'mars:3', 'us-east:1,us-east:2', 'us-east:0'])(
    'rejects region spec %s',
    (spec) => {
      expect(() => parseRegionCounts(spec)).toThrow(
        expect.objectContaining({ name: 'InvalidRegionSpecError' }),
      )
    },
  )

  it('builds testbed links that survive a save/load round trip', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `peer${i}`)
    const links = testbedLinks({ peerIds: ids })
    expect(links.peers!.peer0).toBe('us-east')
    expect(links.peers!.peer4).toBe('eu-west')
    expect(links.peers!.peer11).toBe('ap-southeast')
    const custom = testbedLinks({
      peerIds: ids.slice(0, 3),
      regions: 'eu-west:2,ap-southeast:1',
      order: 'interleave',
    })
    expect(custom.peers).toEqual({ peer0: 'eu-west', peer1: 'ap-southeast', peer2: 'eu-west' })
    expect(() => testbedLinks({ peerIds: ids.slice(0, 5) })).toThrow(
      expect.objectContaining({ name: 'InvalidRegionSpecError' }),
    )
    const dir = await mkdtemp(join(tmpdir(), 'gl-wan-'))
    try {
      const file = join(dir, 'links.json')
      await saveWanLinks(file, links)
      expect(await loadWanLinks(file)).toEqual(parseWanLinks(links))
      await writeFile(file, '{ not json')
      await expect(loadWanLinks(file)).rejects.toMatchObject({ name: 'InvalidWanLinksError' })
      await writeFile(file, JSON.stringify({ regions: { a: {} }, rttMs: {} }))
      await expect(loadWanLinks(file)).rejects.toMatchObject({ name: 'InvalidWanLinksError' })
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('rejects a region assignment whose counts do not match the peers', () => {
    expect(() => assignRegions(['a', 'b'], [{ region: 'x', count: 3 }])).toThrow(
      expect.objectContaining({ name: 'InvalidRegionSpecError' }),
    )
  })
})

describe('Mathis throughput', () => {
  it('is (MSS / RTT) x sqrt(3/2) / sqrt(p), in Mbit/s', () => {
    expect(MATHIS_C).toBeCloseTo(1.224745, 6)
    // p = 0.00015: sqrt(1.5 / 0.00015) = 100, so 100 x 1460 B x 8 bit / 0.1 s = 11.68 Mbit/s.
    expect(mathisThroughputMbps({ rttMs: 100, loss: 0.00015 })).toBeCloseTo(11.68, 6)
    // p = 1 %: 116 800 bit/s x 1.2247449 / 0.1 = 1.43050 Mbit/s.
    expect(mathisThroughputMbps({ rttMs: 100, loss: 0.01 })).toBeCloseTo(1.4305, 4)
    // Halving the RTT doubles it; quartering the loss doubles it; MSS scales it linearly.
    expect(mathisThroughputMbps({ rttMs: 50, loss: 0.01 })).toBeCloseTo(2.861, 3)
    expect(mathisThroughputMbps({ rttMs: 100, loss: 0.0025 })).toBeCloseTo(2.861, 3)
    // 536 B MSS (the IPv4 minimum): 536 x 8 / 0.1 x 12.247 = 0.52517 Mbit/s.
    expect(mathisThroughputMbps({ rttMs: 100, loss: 0.01, mssBytes: 536 })).toBeCloseTo(0.52517, 4)
    expect(mathisThroughputMbps({ rttMs: 0, loss: 0.01 })).toBe(Number.POSITIVE_INFINITY)
    expect(mathisThroughputMbps({ rttMs: 100, loss: 0 })).toBe(Number.POSITIVE_INFINITY)
  })
})

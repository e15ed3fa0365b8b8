import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { MessageStream } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AbstractMessageStream, type SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  assignRegions,
  DEFAULT_WAN_LINKS,
  defaultRegionCounts,
  type EmulatedLinkStream,
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
  type WanLinks,
  wanEmulation,
} from '../../../src/testbed/wan-emulation.ts'

/** A message stream that records what reaches it (the "network" under the emulated link). */
class RecordingStream extends AbstractMessageStream {
  readonly sent: Array<{ t: number; bytes: number[] }> = []
  full = false
  resetWith?: Error
  closedAt?: number

  constructor() {
    super({ log: defaultLogger().forComponent('test:wan') })
  }

  sendData(data: Uint8ArrayList): SendResult {
    this.sent.push({ t: Date.now(), bytes: [...data.subarray()] })
    return { sentBytes: data.byteLength, canSendMore: !this.full }
  }

  sendReset(err: Error): void {
    this.resetWith = err
  }

  sendPause(): void {}
  sendResume(): void {}

  async close(): Promise<void> {
    this.closedAt = Date.now()
    this.onTransportClosed()
  }
}

// Uplink 8 Mbit/s = 1000 bytes per ms: chunk sizes below read directly as ms of serialisation.
// loss 0: no pair throughput cap, only the uplink paces (the cap has its own tests below).
const LINKS: WanLinks = {
  regions: { x: {}, y: {} },
  rttMs: { 'x|x': 4, 'y|y': 4, 'x|y': 60 },
  uplinkMbps: 8,
  loss: 0,
  peers: { a: 'x', b: 'x', c: 'y' },
}

function bytes(n: number, fill = 1): Uint8Array {
  return new Uint8Array(n).fill(fill)
}

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

describe('emulated link stream', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  function setup(init: { highWaterBytes?: number } = {}) {
    const wan = wanEmulation({ links: LINKS, now: () => Date.now(), ...init })
    const toB = new RecordingStream()
    const toC = new RecordingStream()
    const linkB = wan.wrap(toB, 'a', 'b') as EmulatedLinkStream
    const linkC = wan.wrap(toC, 'a', 'c') as EmulatedLinkStream
    return { wan, toB, toC, linkB, linkC }
  }

  it('holds data for serialisation + one-way delay (RTT / 2), never less', async () => {
    const { toC, linkC } = setup()
    linkC.send(bytes(100))
    // 100 bytes at 1000 B/ms = 0.1 ms on the uplink, then 30 ms of propagation.
    await vi.advanceTimersByTimeAsync(30)
    expect(toC.sent).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(toC.sent).toHaveLength(1)
    expect(toC.sent[0]!.t).toBe(31)
    expect(toC.sent[0]!.bytes).toHaveLength(100)
  })

  it('paces chunks at the uplink rate and keeps their order', async () => {
    const { toB, linkB } = setup()
    linkB.send(bytes(10_000, 1))
    linkB.send(bytes(10_000, 2))
    linkB.send(bytes(10_000, 3))
    await vi.advanceTimersByTimeAsync(100)
    // Departures at 10, 20, 30 ms, plus 2 ms one-way delay within region x.
    expect(toB.sent.map((s) => s.t)).toEqual([12, 22, 32])
    expect(toB.sent.map((s) => s.bytes[0])).toEqual([1, 2, 3])
  })

  it('shares one uplink between all connections of a node', async () => {
    const { toB, toC, linkB, linkC } = setup()
    linkC.send(bytes(20_000))
    linkB.send(bytes(10_000))
    await vi.advanceTimersByTimeAsync(100)
    // c's chunk occupies the uplink until 20 ms (+30 ms delay); b's waits for it: 30 ms (+2 ms).
    expect(toC.sent.map((s) => s.t)).toEqual([50])
    expect(toB.sent.map((s) => s.t)).toEqual([32])
  })

  it('batches chunks that fall due together into one inner send', async () => {
    const { toC, linkC } = setup()
    for (let i = 0; i < 5; i++) linkC.send(bytes(10, i))
    await vi.advanceTimersByTimeAsync(100)
    expect(toC.sent).toHaveLength(1)
    expect(toC.sent[0]!.bytes).toEqual([
      ...bytes(10, 0),
      ...bytes(10, 1),
      ...bytes(10, 2),
      ...bytes(10, 3),
      ...bytes(10, 4),
    ])
  })

  it('applies backpressure above the high-water mark and drains', async () => {
    const { linkC, toC } = setup({ highWaterBytes: 1000 })
    expect(linkC.send(bytes(600))).toBe(true)
    expect(linkC.send(bytes(600))).toBe(false)
    expect(linkC.writableNeedsDrain).toBe(true)
    // Further writes wait in the stream's own buffer, not in the link.
    linkC.send(bytes(600))
    expect(linkC.queuedBytes).toBe(1200)
    const drained = vi.fn()
    linkC.addEventListener('drain', drained)
    await vi.advanceTimersByTimeAsync(100)
    expect(drained).toHaveBeenCalled()
    expect(toC.sent.reduce((s, x) => s + x.bytes.length, 0)).toBe(1800)
  })

  it('waits for the inner stream to drain before releasing more', async () => {
    const { linkB, toB } = setup()
    toB.full = true
    linkB.send(bytes(1000, 1))
    await vi.advanceTimersByTimeAsync(10)
    expect(toB.sent).toHaveLength(1)
    linkB.send(bytes(1000, 2))
    await vi.advanceTimersByTimeAsync(50)
    expect(toB.sent).toHaveLength(1)
    toB.full = false
    toB.safeDispatchEvent('drain')
    await vi.advanceTimersByTimeAsync(0)
    expect(toB.sent.map((s) => s.bytes[0])).toEqual([1, 2])
  })

  it('close() flushes queued data before closing the inner stream', async () => {
    const { linkC, toC } = setup()
    linkC.send(bytes(5000))
    const closed = linkC.close()
    await vi.advanceTimersByTimeAsync(100)
    await closed
    expect(toC.sent[0]!.t).toBe(35)
    expect(toC.closedAt).toBe(35)
  })

  it('abort() drops queued data and resets the inner stream', async () => {
    const { linkC, toC, wan } = setup()
    linkC.send(bytes(5000))
    linkC.abort(new Error('boom'))
    await vi.advanceTimersByTimeAsync(100)
    expect(toC.sent).toHaveLength(0)
    expect(toC.resetWith?.message).toBe('boom')
    expect(wan.stats().queuedBytes).toBe(0)
  })

  it('passes received data through without delay', async () => {
    const { linkB, toB } = setup()
    const got: number[] = []
    linkB.addEventListener('message', (evt) => got.push(...evt.data.subarray()))
    toB.onData(bytes(3, 7))
    expect(got).toEqual([7, 7, 7])
  })

  it('counts bytes within and across regions', async () => {
    const { wan, linkB, linkC } = setup()
    linkB.send(bytes(100))
    linkC.send(bytes(250))
    await vi.advanceTimersByTimeAsync(100)
    expect(wan.stats()).toMatchObject({
      region: 'x',
      bytesSentIntraRegion: 100,
      bytesSentInterRegion: 250,
      bytesSentByRegion: { x: 100, y: 250 },
      connections: 2,
      queuedBytes: 0,
    })
    expect(wan.rttMs('a', 'c')).toBe(60)
    expect(wan.rttMs('a', 'zz')).toBeUndefined()
  })

  it('wraps an encrypter: secured connections are delayed and closing the raw one flushes them first', async () => {
    const local = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(1))
    const remote = await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(2))
    const [localId, remoteId] = [peerIdFromPrivateKey(local), peerIdFromPrivateKey(remote)]
    const links: WanLinks = { ...LINKS, peers: { [localId.toString()]: 'x', [remoteId.toString()]: 'y' } }
    const wan = wanEmulation({ links, now: () => Date.now() })
    const secured = new RecordingStream()
    const raw = new RecordingStream()
    const encrypter = wan.encrypter(() => ({
      protocol: '/fake',
      secureInbound: async () => ({ connection: secured, remotePeer: remoteId }),
      secureOutbound: async () => ({ connection: secured, remotePeer: remoteId }),
    }))({ peerId: localId })
    expect(encrypter.protocol).toBe('/fake')
    const result = await encrypter.secureOutbound(raw)
    expect(result.remotePeer).toBe(remoteId)
    expect(result.connection).not.toBe(secured)
    result.connection.send(bytes(100))
    const closing = raw.close()
    await vi.advanceTimersByTimeAsync(10)
    expect(raw.closedAt).toBeUndefined()
    await vi.advanceTimersByTimeAsync(50)
    await closing
    expect(secured.sent.map((s) => s.t)).toEqual([31])
    expect(raw.closedAt).toBe(31)
    expect(wan.stats().bytesSentInterRegion).toBe(100)
  })

  it('leaves a node outside the links file alone and refuses to serve two nodes', () => {
    const wan = wanEmulation({ links: LINKS })
    const inner: MessageStream = new RecordingStream()
    expect(wan.wrap(inner, 'stranger', 'a')).toBe(inner)
    const wan2 = wanEmulation({ links: LINKS })
    wan2.wrap(new RecordingStream(), 'a', 'b')
    expect(() => wan2.wrap(new RecordingStream(), 'b', 'a')).toThrow(
      expect.objectContaining({ name: 'WanEmulationSharedError' }),
    )
  })
})

describe('pair throughput cap', () => {
  // Uplink 1000 B/ms as above; the x|y pair carries 0.8 Mbit/s = 100 B/ms per flow, x|x is uncapped (loss 0).
  const CAPPED: WanLinks = { ...LINKS, throughputMbps: { 'y|x': 0.8 } }
  const delivered = (s: RecordingStream, until = Number.POSITIVE_INFINITY) =>
    s.sent.filter((x) => x.t <= until).reduce((n, x) => n + x.bytes.length, 0)

  describe('virtual time', () => {
    beforeEach(() => {
      vi.useFakeTimers({ now: 0 })
    })
    afterEach(() => {
      vi.useRealTimers()
    })

    it('paces a capped flow at the pair rate, not the uplink rate', async () => {
      const wan = wanEmulation({ links: CAPPED, now: () => Date.now() })
      expect(wan.throughputMbps('a', 'c')).toBe(0.8)
      const toC = new RecordingStream()
      const linkC = wan.wrap(toC, 'a', 'c')
      for (let i = 0; i < 10; i++) linkC.send(bytes(1000, i))
      await vi.advanceTimersByTimeAsync(500)
      // 10 000 B at 100 B/ms leave over 100 ms, then 30 ms one-way: at the uplink's rate alone
      // they would all be there by 40 ms. By 80 ms (50 ms of flow time) at most 5000 B may have arrived.
      expect(delivered(toC, 40)).toBeLessThan(10_000)
      expect(delivered(toC, 80)).toBeLessThanOrEqual(5000)
      expect(delivered(toC)).toBe(10_000)
      expect(Math.max(...toC.sent.map((s) => s.t))).toBeGreaterThanOrEqual(130)
      expect(toC.sent.flatMap((s) => s.bytes).filter((_, i) => i % 1000 === 0)).toEqual([
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
      ])
    })

    it('leaves an uncapped in-region flow of the same node at the uplink rate', async () => {
      const wan = wanEmulation({ links: CAPPED, now: () => Date.now() })
      const toB = new RecordingStream()
      const toC = new RecordingStream()
      const linkB = wan.wrap(toB, 'a', 'b')
      const linkC = wan.wrap(toC, 'a', 'c')
      linkC.send(bytes(10_000))
      linkB.send(bytes(10_000))
      await vi.advanceTimersByTimeAsync(500)
      // c's bytes hold the uplink 0-10 ms, b's 10-20 ms (+2 ms one-way); c's flow takes 100 ms (+30 ms).
      expect(toB.sent.map((s) => s.t)).toEqual([22])
      expect(toC.sent.map((s) => s.t)).toEqual([130])
    })

    it('caps far flows of the default topology below a 20 Mbit/s uplink', async () => {
      const links: WanLinks = {
        ...DEFAULT_WAN_LINKS,
        peers: { a: 'us-east', b: 'us-east', c: 'ap-southeast' },
      }
      const wan = wanEmulation({ links, now: () => Date.now() })
      const toB = new RecordingStream()
      const toC = new RecordingStream()
      wan.wrap(toB, 'a', 'b').send(bytes(100_000))
      await vi.advanceTimersByTimeAsync(1000)
      wan.wrap(toC, 'a', 'c').send(bytes(100_000))
      await vi.advanceTimersByTimeAsync(2000)
      // In-region: 45 Mbit/s Mathis > 20 Mbit/s uplink, so 800 000 bit / 20 Mbit/s = 40 ms, + 5 ms one-way.
      expect(toB.sent.map((s) => s.t)).toEqual([45])
      // us-east|ap-southeast: 2.104 Mbit/s, so 800 000 bit take 380.2 ms, + 107.5 ms one-way, from t = 1000.
      expect(toC.sent[0]!.t - 1000).toBeGreaterThanOrEqual(487)
      expect(toC.sent[0]!.t - 1000).toBeLessThanOrEqual(489)
    })
  })

  it('takes at least bytes / rate of real time to pass a payload', async () => {
    const wan = wanEmulation({ links: CAPPED })
    const toC = new RecordingStream()
    const linkC = wan.wrap(toC, 'a', 'c')
    const start = Date.now()
    // 20 000 B at 100 B/ms: 200 ms on the flow (the uplink alone would pass them in 20 ms).
    for (let i = 0; i < 20; i++) linkC.send(bytes(1000))
    await vi.waitFor(() => expect(delivered(toC)).toBe(20_000), { timeout: 5000, interval: 10 })
    // A lower bound only: a busy machine can make it later, never earlier.
    expect(Date.now() - start).toBeGreaterThanOrEqual(0.8 * 200)
  })
})

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
  parseRegionCounts,
  parseWanLinks,
  regionRttMs,
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
const LINKS: WanLinks = {
  regions: { x: {}, y: {} },
  rttMs: { 'x|x': 4, 'y|y': 4, 'x|y': 60 },
  uplinkMbps: 8,
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

import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { MessageStream } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AbstractMessageStream, type SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type EmulatedLinkStream, wanEmulation } from '../../../src/testbed/wan-emulation.ts'
import { DEFAULT_WAN_LINKS, type WanLinks } from '../../../src/testbed/wan-links.ts'

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

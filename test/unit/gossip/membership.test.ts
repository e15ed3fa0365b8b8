import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ANNOUNCE_DEFAULTS,
  type AnnounceMessage,
  decodeDescriptor,
  encodeDescriptor,
  MAX_DESCRIPTOR_BYTES,
  Membership,
  type PubsubLike,
  type TopicVerdict,
} from '../../../src/gossip/membership.ts'

class FakePubsub implements PubsubLike {
  readonly published: Uint8Array[] = []
  private readonly listeners = new Set<(evt: CustomEvent<AnnounceMessage>) => void>()
  subscribe(): void {}
  unsubscribe(): void {}
  async publish(_topic: string, data: Uint8Array): Promise<unknown> {
    this.published.push(data)
    return {}
  }
  addEventListener(_t: 'message', l: (evt: CustomEvent<AnnounceMessage>) => void): void {
    this.listeners.add(l)
  }
  removeEventListener(_t: 'message', l: (evt: CustomEvent<AnnounceMessage>) => void): void {
    this.listeners.delete(l)
  }
  /** The mesh per topic, as gossipsub keeps it. */
  readonly meshes = new Map<string, unknown[]>()
  getMeshPeers(topic: string): unknown[] {
    return this.meshes.get(topic) ?? []
  }
  deliver(msg: AnnounceMessage): void {
    for (const l of this.listeners) l(new CustomEvent('message', { detail: msg }))
  }
}

const self: PeerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
const other: PeerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

const good = () => ({
  v: 1 as const,
  peerId: other.toString(),
  addrs: ['/ip4/127.0.0.1/tcp/4001'],
  age: 10,
  accuracy: 0.5,
})

/** Periods small enough to step through: 2 s, plus 250 ms per peer heard from, at most 8 s. */
const SMALL_PERIODS = {
  task: 't',
  describe: () => ({ addrs: [], age: 0 }),
  intervalMs: 2000,
  perPeerMs: 250,
  maxIntervalMs: 8000,
}

/** Delivers one valid announcement from each of `count` new peers. */
async function hearFromNewPeers(pubsub: FakePubsub, m: Membership, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const o = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    pubsub.deliver({
      type: 'signed',
      topic: m.topic,
      from: o,
      data: encodeDescriptor({ ...good(), peerId: o.toString() }),
    })
  }
}

describe('decodeDescriptor', () => {
  it('round-trips a valid descriptor', () => {
    expect(decodeDescriptor(encodeDescriptor(good()), other.toString())).toMatchObject(good())
  })

  it.each([
    ['not JSON', new TextEncoder().encode('{nope')],
    ['an array', new TextEncoder().encode('[1,2]')],
    ['a wrong version', encodeDescriptor({ ...good(), v: 2 as never })],
    ['a negative age', encodeDescriptor({ ...good(), age: -1 })],
    ['an accuracy above 1', encodeDescriptor({ ...good(), accuracy: 3 })],
    ['a bad multiaddr', encodeDescriptor({ ...good(), addrs: ['nope'] })],
    [
      'a malformed coordinate',
      encodeDescriptor({ ...good(), coordinate: { vec: [Number.NaN], height: 0, error: 1 } }),
    ],
    ['too many bytes', new Uint8Array(MAX_DESCRIPTOR_BYTES + 1)],
    ['a zero period', encodeDescriptor({ ...good(), every: 0 })],
    [
      'a period beyond the longest',
      encodeDescriptor({ ...good(), every: ANNOUNCE_DEFAULTS.maxIntervalMs + 1 }),
    ],
    ['a period that is not a number', encodeDescriptor({ ...good(), every: '5000' as never })],
    ['a hungry flag that is not a boolean', encodeDescriptor({ ...good(), hungry: 1 as never })],
  ])('refuses %s', (_what, bytes) => {
    expect(() => decodeDescriptor(bytes, other.toString())).toThrow(
      expect.objectContaining({ name: 'InvalidDescriptorError' }),
    )
  })

  it('refuses a descriptor announcing someone else', () => {
    expect(() => decodeDescriptor(encodeDescriptor(good()), self.toString())).toThrow(/signer/)
  })
})

describe('Membership', () => {
  let m: Membership | undefined
  afterEach(() => m?.stop())

  it("reports its gossipsub mesh for the announcement topic, not another topic's", () => {
    const pubsub = new FakePubsub()
    m = new Membership({ pubsub, peerId: self, logger: defaultLogger() }, SMALL_PERIODS)
    expect(m.meshSize()).toBe(0)
    pubsub.meshes.set('other-topic', [1, 2, 3])
    pubsub.meshes.set(m.topic, [other])
    expect(m.meshSize()).toBe(1)
    // A pubsub that does not say reads as no mesh.
    const bare: PubsubLike = {
      subscribe: () => {},
      unsubscribe: () => {},
      publish: async () => ({}),
      addEventListener: () => {},
      removeEventListener: () => {},
    }
    const quiet = new Membership({ pubsub: bare, peerId: self, logger: defaultLogger() }, SMALL_PERIODS)
    expect(quiet.meshSize()).toBe(0)
  })

  it('announces itself, adds valid peers, counts and ignores invalid ones, expires silent ones', async () => {
    const pubsub = new FakePubsub()
    let now = 1000
    const stored: string[] = []
    m = new Membership(
      {
        pubsub,
        peerId: self,
        logger: defaultLogger(),
        now: () => now,
        addAddresses: async (id) => void stored.push(id.toString()),
      },
      { task: 't', describe: () => ({ addrs: [], age: 5 }), intervalMs: 60_000, ttlMs: 5000 },
    )
    m.start()
    await new Promise((r) => setTimeout(r, 0))
    expect(pubsub.published).toHaveLength(1)
    expect(JSON.parse(new TextDecoder().decode(pubsub.published[0]))).toMatchObject({
      peerId: self.toString(),
      age: 5,
    })

    pubsub.deliver({ type: 'signed', topic: m.topic, from: other, data: new TextEncoder().encode('garbage') })
    pubsub.deliver({ type: 'unsigned', topic: m.topic, data: encodeDescriptor(good()) })
    expect(m.peers()).toHaveLength(0)
    expect(m.rejected.get('InvalidDescriptorError')).toBe(2)

    pubsub.deliver({ type: 'signed', topic: m.topic, from: other, data: encodeDescriptor(good()) })
    expect(m.peers().map((p) => p.peerId)).toEqual([other.toString()])
    expect(stored).toEqual([other.toString()])

    now += 6000
    expect(m.peers()).toHaveLength(0)
  })

  it('evicts a peer until it announces again', () => {
    const pubsub = new FakePubsub()
    m = new Membership(
      { pubsub, peerId: self, logger: defaultLogger() },
      { task: 't', describe: () => ({ addrs: [], age: 0 }) },
    )
    m.start()
    pubsub.deliver({ type: 'signed', topic: m.topic, from: other, data: encodeDescriptor(good()) })
    expect(m.peers()).toHaveLength(1)
    m.evict(other.toString())
    expect(m.peers()).toHaveLength(0)
    pubsub.deliver({ type: 'signed', topic: m.topic, from: other, data: encodeDescriptor(good()) })
    expect(m.peers()).toHaveLength(1)
  })

  it('keeps when a peer entered the view across its announcements, and starts anew after it expired', () => {
    const pubsub = new FakePubsub()
    let now = 1000
    m = new Membership(
      { pubsub, peerId: self, logger: defaultLogger(), now: () => now },
      { task: 't', describe: () => ({ addrs: [], age: 0 }), intervalMs: 60_000, ttlMs: 5000 },
    )
    m.start()
    const hear = () =>
      pubsub.deliver({ type: 'signed', topic: m!.topic, from: other, data: encodeDescriptor(good()) })
    hear()
    now += 3000
    hear()
    expect(m.peers().map((p) => [p.addedAt, p.lastSeen])).toEqual([[1000, 4000]])
    now += 6000
    expect(m.peers()).toHaveLength(0)
    hear()
    expect(m.peers().map((p) => p.addedAt)).toEqual([10_000])
  })

  it('registers a gossipsub topic validator that rejects invalid announcements before they spread', () => {
    const pubsub = Object.assign(new FakePubsub(), {
      topicValidators: new Map<string, (peer: PeerId, msg: AnnounceMessage) => TopicVerdict>(),
    })
    m = new Membership(
      { pubsub, peerId: self, logger: defaultLogger() },
      { task: 't', describe: () => ({ addrs: [], age: 0 }) },
    )
    m.start()
    const validate = pubsub.topicValidators.get(m.topic)!
    expect(validate).toBeTypeOf('function')
    expect(
      validate(other, { type: 'signed', topic: m.topic, from: other, data: encodeDescriptor(good()) }),
    ).toBe('accept')
    expect(
      validate(other, { type: 'signed', topic: m.topic, from: self, data: encodeDescriptor(good()) }),
    ).toBe('reject')
    expect(validate(other, { type: 'unsigned', topic: m.topic, data: encodeDescriptor(good()) })).toBe(
      'reject',
    )
    expect(m.rejected.get('InvalidDescriptorError')).toBe(2)
    m.stop()
    expect(pubsub.topicValidators.has(m.topic)).toBe(false)
  })

  it('announces less often as its view grows, so each node hears a bounded number of announcements', async () => {
    vi.useFakeTimers()
    try {
      const pubsub = new FakePubsub()
      m = new Membership({ pubsub, peerId: self, logger: defaultLogger() }, SMALL_PERIODS)
      m.start()
      await vi.advanceTimersByTimeAsync(0)
      const sent = () => pubsub.published.map((b) => JSON.parse(new TextDecoder().decode(b)))
      expect(sent()).toHaveLength(1)
      expect(sent()[0].every).toBe(2000)
      await vi.advanceTimersByTimeAsync(2000)
      expect(sent()).toHaveLength(2)

      // 20 peers in the view: 20 x 250 ms = 5 s between announcements.
      await hearFromNewPeers(pubsub, m, 20)
      expect(m.periodMs).toBe(5000)
      await vi.advanceTimersByTimeAsync(2000) // the announcement scheduled before the view grew
      expect(sent()).toHaveLength(3)
      expect(sent()[2].every).toBe(5000)
      await vi.advanceTimersByTimeAsync(4999)
      expect(sent()).toHaveLength(3)
      await vi.advanceTimersByTimeAsync(1)
      expect(sent()).toHaveLength(4)

      // 40 peers would make 10 s: capped at maxIntervalMs.
      await hearFromNewPeers(pubsub, m, 20)
      expect(m.periodMs).toBe(8000)
    } finally {
      vi.useRealTimers()
    }
  })

  it('keeps a peer for three of its own announcement periods, and the default without one', () => {
    const pubsub = new FakePubsub()
    let now = 0
    m = new Membership(
      { pubsub, peerId: self, logger: defaultLogger(), now: () => now },
      { task: 't', describe: () => ({ addrs: [], age: 0 }), intervalMs: 60_000, ttlMs: 6000 },
    )
    m.start()
    pubsub.deliver({
      type: 'signed',
      topic: m.topic,
      from: other,
      data: encodeDescriptor({ ...good(), every: 30_000 }),
    })
    now += 89_000
    expect(m.peers().map((p) => p.peerId)).toEqual([other.toString()])
    now += 2000
    expect(m.peers()).toHaveLength(0)

    // A node from before the period was announced: the local ttl.
    pubsub.deliver({ type: 'signed', topic: m.topic, from: other, data: encodeDescriptor(good()) })
    now += 6001
    expect(m.peers()).toHaveLength(0)
  })

  it('marks a peer hungry for a window from its first claim, not restarted by a pause or an eviction', () => {
    const pubsub = new FakePubsub()
    let now = 0
    m = new Membership(
      { pubsub, peerId: self, logger: defaultLogger(), now: () => now },
      { task: 't', describe: () => ({ addrs: [], age: 0 }), hungryWindowMs: 60_000 },
    )
    m.start()
    const hear = (hungry?: boolean) =>
      pubsub.deliver({
        type: 'signed',
        topic: m!.topic,
        from: other,
        data: encodeDescriptor({ ...good(), ...(hungry === undefined ? {} : { hungry }) }),
      })
    const hungry = () => m!.get(other.toString())?.hungry
    hear()
    expect(hungry()).toBe(false)
    hear(true)
    expect(hungry()).toBe(true)
    now += 20_000
    hear(false)
    expect(hungry()).toBe(false)
    now += 20_000
    m.evict(other.toString())
    hear(true)
    expect(hungry()).toBe(true)
    // 60 s after the first claim: an ordinary peer however often it says it is hungry.
    now += 20_000
    hear(true)
    expect(hungry()).toBe(false)
  })

  it('keeps its period while view entries expire, and shortens it once the peers are gone for long', async () => {
    const pubsub = new FakePubsub()
    let now = 0
    m = new Membership({ pubsub, peerId: self, logger: defaultLogger(), now: () => now }, SMALL_PERIODS)
    m.start()
    await hearFromNewPeers(pubsub, m, 20)
    expect(m.periodMs).toBe(5000)
    // Announcements arriving late on a loaded network: the entries expire, the period stays.
    now += 10_000
    expect(m.peers()).toHaveLength(0)
    expect(m.periodMs).toBe(5000)
    // Nobody heard from for three of the longest periods: back to the base.
    now += 3 * 8000
    expect(m.periodMs).toBe(2000)
  })

  it('refuses periods a node could not announce on the wire', () => {
    const pubsub = new FakePubsub()
    expect(
      () =>
        new Membership(
          { pubsub, peerId: self, logger: defaultLogger() },
          {
            task: 't',
            describe: () => ({ addrs: [], age: 0 }),
            maxIntervalMs: ANNOUNCE_DEFAULTS.maxIntervalMs + 1,
          },
        ),
    ).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
  })
})

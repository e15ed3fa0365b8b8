import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { type AbortOptions, type PeerId, TypedEventEmitter } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { PingBusyError, PingNotConnectedError } from '../../../../src/gossip/topology/stream-ping.ts'
import { type TopologyNode, TopologyService } from '../../../../src/gossip/topology/topology-service.ts'
import { type Coordinate, distance, VivaldiClient } from '../../../../src/gossip/topology/vivaldi.ts'

/** A node whose ping answers from a table (or fails / hangs), with connect/disconnect by hand. */
class FakeNode extends TypedEventEmitter<{ 'peer:disconnect': CustomEvent<PeerId> }> implements TopologyNode {
  peers: PeerId[] = []
  readonly pinged: string[] = []
  /** RTT per peer id; missing = the ping fails; 'hang' = never answers (until aborted). */
  answers = new Map<string, number | 'hang'>()

  readonly services = {
    ping: {
      ping: (peer: PeerId, options: AbortOptions = {}): Promise<number> => {
        const id = peer.toString()
        this.pinged.push(id)
        const a = this.answers.get(id)
        if (a === undefined) return Promise.reject(new Error('dial failed'))
        if (a === 'hang') {
          return new Promise((_, reject) => {
            options.signal?.addEventListener('abort', () => reject(options.signal?.reason), { once: true })
          })
        }
        return Promise.resolve(a)
      },
    },
  }

  getPeers(): PeerId[] {
    return this.peers
  }

  disconnect(peer: PeerId): void {
    this.peers = this.peers.filter((p) => !p.equals(peer))
    this.safeDispatchEvent('peer:disconnect', { detail: peer })
  }
}

let ids: PeerId[] = []
beforeAll(async () => {
  // Seeded identities: the round-robin order (and so the Vivaldi run) is the same every time.
  ids = await Promise.all(
    [0, 1, 2, 3, 4].map(async (i) =>
      peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i + 1))),
    ),
  )
})

const logger = defaultLogger()

describe('TopologyService', () => {
  it('pings a few peers per tick, least recently pinged first, covering all of them', async () => {
    const node = new FakeNode()
    node.peers = ids.slice(0, 5)
    for (const p of node.peers) node.answers.set(p.toString(), 20)
    const topo = new TopologyService(
      { node, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: () => undefined, pingsPerTick: 2 },
    )
    expect(await topo.tick()).toBe(2)
    expect(await topo.tick()).toBe(2)
    expect(await topo.tick()).toBe(2)
    const first = node.pinged.slice(0, 5)
    expect(new Set(first).size).toBe(5)
    // The sixth ping goes to the peer pinged longest ago.
    expect(node.pinged[5]).toBe(node.pinged[0])
    expect(topo.counters).toMatchObject({ pingsSent: 6, pingsOk: 6, pingsFailed: 0, coordinatesMissing: 6 })
  })

  it('does not ping a peer reached only through a relay', async () => {
    const node = new FakeNode()
    node.peers = ids.slice(0, 3)
    for (const p of node.peers) node.answers.set(p.toString(), 20)
    const limited = { bytes: 131072n }
    const relayedNode = Object.assign(node, {
      // ids[0]: only relayed; ids[1]: relayed and direct; ids[2]: direct.
      getConnections: () =>
        [
          [ids[0]!, limited],
          [ids[1]!, limited],
          [ids[1]!, undefined],
          [ids[2]!, undefined],
        ].map(([remotePeer, limits]) => ({ remotePeer, limits, status: 'open' }) as never),
    })
    const topo = new TopologyService(
      { node: relayedNode, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: () => undefined, pingsPerTick: 3 },
    )
    expect(await topo.tick()).toBe(2)
    expect(new Set(node.pinged)).toEqual(new Set([ids[1]!.toString(), ids[2]!.toString()]))
  })

  it('keeps a median RTT per peer and moves the coordinate toward announced ones', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!]
    const remote: Coordinate = { vec: [50, 0], height: 0.01, error: 0.1 }
    const samples = [40, 41, 200, 39, 40]
    const topo = new TopologyService(
      { node, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: (id) => (id === ids[0]!.toString() ? remote : undefined) },
    )
    for (const s of samples) {
      node.answers.set(ids[0]!.toString(), s)
      await topo.tick()
    }
    expect(topo.rttMs(ids[0]!.toString())).toBe(40)
    expect(topo.counters.coordinateUpdates).toBe(5)
    expect(topo.predictRttMs(remote)).toBeGreaterThan(25)
    expect(topo.predictRttMs(remote)).toBeLessThan(60)
    expect(topo.predictRttMs({ vec: [Number.NaN, 0], height: 1, error: 1 })).toBeUndefined()
  })

  it('converges to the position that the announced coordinates and measured RTTs imply', async () => {
    // Three remotes with settled coordinates at corners of a 60 x 80 ms rectangle (shifted off
    // the origin); we sit at the fourth corner, (10, 20). Pings answer with the true distances.
    const remotes: Coordinate[] = [
      { vec: [70, 20], height: 0.01, error: 0.05 },
      { vec: [10, 100], height: 0.01, error: 0.05 },
      { vec: [70, 100], height: 0.01, error: 0.05 },
    ]
    const truth: Coordinate = { vec: [10, 20], height: 0.01, error: 0 }
    const node = new FakeNode()
    node.peers = ids.slice(1, 4)
    node.peers.forEach((p, i) => {
      node.answers.set(p.toString(), Math.round(distance(truth, remotes[i]!)))
    })
    const topo = new TopologyService(
      { node, logger },
      {
        peerCooldownMs: 0,
        vivaldi: new VivaldiClient({ random: seeded(1) }),
        pingsPerTick: 3,
        getRemoteCoordinate: (id) => remotes[ids.slice(1, 4).findIndex((p) => p.toString() === id)],
      },
    )
    const far = remotes.map((r) => Math.abs(distance(topo.coordinate(), r) - distance(truth, r)))
    for (let round = 0; round < 60; round++) await topo.tick()
    remotes.forEach((r, i) => {
      const want = distance(truth, r)
      const got = topo.predictRttMs(r)!
      expect(Math.abs(got - want) / want).toBeLessThan(0.05)
      expect(Math.abs(got - want)).toBeLessThan(far[i]!)
    })
    expect(topo.coordinate().error).toBeLessThan(0.1)
    expect(topo.counters.coordinateUpdates).toBe(180)
  })

  it('counts failures and reports a peer unreachable after consecutive failures', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!, ids[1]!]
    node.answers.set(ids[1]!.toString(), 10)
    const unreachable: string[] = []
    const topo = new TopologyService(
      { node, logger },
      {
        peerCooldownMs: 0,
        getRemoteCoordinate: () => undefined,
        maxConsecutiveFailures: 3,
        onUnreachable: (id) => unreachable.push(id),
      },
    )
    await topo.tick()
    await topo.tick()
    expect(unreachable).toEqual([])
    await topo.tick()
    expect(unreachable).toEqual([ids[0]!.toString()])
    expect(topo.counters).toMatchObject({ pingsFailed: 3, pingsOk: 3, unreachable: 1 })
  })

  it('a success resets the failure streak', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!]
    const unreachable: string[] = []
    const topo = new TopologyService(
      { node, logger },
      {
        peerCooldownMs: 0,
        getRemoteCoordinate: () => undefined,
        maxConsecutiveFailures: 2,
        onUnreachable: (id) => unreachable.push(id),
      },
    )
    await topo.tick()
    node.answers.set(ids[0]!.toString(), 5)
    await topo.tick()
    node.answers.delete(ids[0]!.toString())
    await topo.tick()
    expect(unreachable).toEqual([])
  })

  it('times out a ping that never answers and counts it as failed', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!]
    node.answers.set(ids[0]!.toString(), 'hang')
    const topo = new TopologyService(
      { node, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: () => undefined, pingTimeoutMs: 50 },
    )
    expect(await topo.tick()).toBe(0)
    expect(topo.counters.pingsFailed).toBe(1)
  })

  it('stop() aborts pings in flight without counting them as failures', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!]
    node.answers.set(ids[0]!.toString(), 'hang')
    const topo = new TopologyService(
      { node, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: () => undefined, intervalMs: 60_000, pingTimeoutMs: 60_000 },
    )
    topo.start()
    topo.start()
    await new Promise((r) => setTimeout(r, 10))
    expect(node.pinged).toHaveLength(1)
    topo.stop()
    topo.stop()
    await new Promise((r) => setTimeout(r, 10))
    expect(topo.counters.pingsFailed).toBe(0)
  })

  it('does not ping a peer whose previous ping is still in flight', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!]
    node.answers.set(ids[0]!.toString(), 'hang')
    const topo = new TopologyService(
      { node, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: () => undefined, pingTimeoutMs: 100 },
    )
    const first = topo.tick()
    expect(await topo.tick()).toBe(0)
    await first
    expect(node.pinged).toHaveLength(1)
  })

  it('waits out a cooldown before pinging the same peer again', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!, ids[1]!]
    node.answers.set(ids[0]!.toString(), 10)
    node.answers.set(ids[1]!.toString(), 10)
    let now = 1000
    const topo = new TopologyService(
      { node, logger },
      { getRemoteCoordinate: () => undefined, peerCooldownMs: 500, now: () => now },
    )
    expect(await topo.tick()).toBe(2)
    now += 499
    expect(await topo.tick()).toBe(0)
    now += 1
    expect(await topo.tick()).toBe(2)
  })

  it('does not count a local ping-stream limit as a failure of the peer', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!]
    const busy = Object.assign(new Error('Too many outbound protocol streams'), {
      name: 'TooManyOutboundProtocolStreamsError',
    })
    node.services.ping.ping = async () => {
      throw busy
    }
    const unreachable: string[] = []
    const topo = new TopologyService(
      { node, logger },
      {
        peerCooldownMs: 0,
        maxConsecutiveFailures: 1,
        getRemoteCoordinate: () => undefined,
        onUnreachable: (id) => unreachable.push(id),
      },
    )
    await topo.tick()
    expect(topo.counters).toMatchObject({ pingsBusy: 1, pingsFailed: 0 })
    expect(unreachable).toEqual([])
  })

  it('pings through init.ping when given, and counts its busy refusal as busy', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!, ids[1]!, ids[2]!]
    const asked: string[] = []
    const topo = new TopologyService(
      { node, logger },
      {
        peerCooldownMs: 0,
        maxConsecutiveFailures: 1,
        getRemoteCoordinate: () => undefined,
        ping: async (peer) => {
          asked.push(peer.toString())
          if (peer.equals(ids[0]!)) throw new PingBusyError('in flight')
          if (peer.equals(ids[2]!)) throw new PingNotConnectedError('hung up since the tick chose it')
          return 15
        },
      },
    )
    expect(await topo.tick()).toBe(1)
    expect(node.pinged).toEqual([])
    expect(asked.sort()).toEqual([ids[0]!.toString(), ids[1]!.toString(), ids[2]!.toString()].sort())
    // Neither a ping in flight nor a connection closed since counts against the peer.
    expect(topo.counters).toMatchObject({ pingsBusy: 1, pingsFailed: 0, pingsOk: 1 })
    expect(topo.rttMs(ids[1]!.toString())).toBe(15)
  })

  it('forgets a peer on disconnect', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!, ids[1]!]
    node.answers.set(ids[0]!.toString(), 30)
    node.answers.set(ids[1]!.toString(), 40)
    const topo = new TopologyService(
      { node, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: () => undefined, intervalMs: 60_000 },
    )
    topo.start()
    await topo.tick()
    expect(topo.rttMs(ids[0]!.toString())).toBe(30)
    node.disconnect(ids[0]!)
    expect(topo.rttMs(ids[0]!.toString())).toBeUndefined()
    expect(topo.rttMs(ids[1]!.toString())).toBe(40)
    topo.stop()
  })

  it('forgets at its next tick a peer whose ping ended after its disconnect (it would stay for good)', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!, ids[1]!]
    let answer: ((ms: number) => void) | undefined
    const topo = new TopologyService(
      { node, logger },
      {
        peerCooldownMs: 0,
        pingsPerTick: 2,
        getRemoteCoordinate: () => undefined,
        intervalMs: 60_000,
        ping: (peer) =>
          peer.equals(ids[0]!) ? new Promise<number>((resolve) => (answer = resolve)) : Promise.resolve(40),
      },
    )
    const first = topo.tick()
    node.disconnect(ids[0]!)
    answer!(30)
    await first
    // The late answer recorded the peer after the disconnect had forgotten it.
    expect(topo.rttMs(ids[0]!.toString())).toBe(30)
    await topo.tick()
    expect(topo.rttMs(ids[0]!.toString())).toBeUndefined()
    expect(topo.rttMs(ids[1]!.toString())).toBe(40)
  })

  it('rejects a bad coordinate or sample without moving', async () => {
    const node = new FakeNode()
    node.peers = [ids[0]!]
    node.answers.set(ids[0]!.toString(), 20)
    const topo = new TopologyService(
      { node, logger },
      { peerCooldownMs: 0, getRemoteCoordinate: () => ({ vec: [1, 2, 3], height: 1, error: 1 }) },
    )
    const before = topo.coordinate()
    await topo.tick()
    expect(topo.coordinate()).toEqual(before)
    expect(topo.counters.samplesRejected).toBe(1)
    node.answers.set(ids[0]!.toString(), -5)
    await topo.tick()
    expect(topo.counters.samplesRejected).toBe(2)
  })

  it('validates its options', () => {
    const node = new FakeNode()
    for (const bad of [
      { intervalMs: 0 },
      { pingsPerTick: 0 },
      { pingTimeoutMs: -1 },
      { maxConsecutiveFailures: 0.5 },
    ]) {
      expect(
        () =>
          new TopologyService(
            { node, logger },
            { peerCooldownMs: 0, getRemoteCoordinate: () => undefined, ...bad },
          ),
      ).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
    }
  })
})

/** mulberry32: a tiny seeded PRNG so Vivaldi's random directions are reproducible. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

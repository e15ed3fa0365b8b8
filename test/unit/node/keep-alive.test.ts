import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { AbortOptions, Connection, PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  PING_PROTOCOL,
  PingBusyError,
  PingNotConnectedError,
  StreamPinger,
} from '../../../src/gossip/topology/stream-ping.ts'
import { createNode, type GossipLearnNode } from '../../../src/node/create-node.ts'
import { KeepAlive, KeepAliveFailedError } from '../../../src/node/keep-alive.ts'
import { InvalidArgumentError } from '../../../src/util/errors.ts'

interface FakeConnection {
  remotePeer: PeerId
  status: 'open' | 'closed'
  limits?: object
  aborted?: Error
  abort(err: Error): void
}

function connection(peer: PeerId, extra: Partial<FakeConnection> = {}): FakeConnection {
  const c: FakeConnection = {
    remotePeer: peer,
    status: 'open',
    abort(err) {
      c.aborted = err
      c.status = 'closed'
    },
    ...extra,
  }
  return c
}

describe('KeepAlive', () => {
  let peers: PeerId[]
  let keepAlive: KeepAlive | undefined
  beforeAll(async () => {
    peers = await Promise.all(
      [1, 2, 3, 4].map(async (i) =>
        peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(i))),
      ),
    )
  })
  afterEach(() => keepAlive?.stop())

  const make = (conns: FakeConnection[], ping: (peer: PeerId, o: AbortOptions) => Promise<number>) =>
    new KeepAlive(
      { getConnections: () => conns as unknown as Connection[] },
      { intervalMs: 60_000, timeoutMs: 200, ping },
    )

  it('pings each peer with an open direct connection once, and leaves live ones open', async () => {
    const [a, b, relayed] = peers as [PeerId, PeerId, PeerId]
    const conns = [
      connection(a),
      connection(a),
      connection(b),
      connection(relayed, { limits: { bytes: 1n } }),
      connection(peers[3]!, { status: 'closed' }),
    ]
    const pinged: string[] = []
    keepAlive = make(conns, async (peer) => {
      pinged.push(peer.toString())
      return 1
    })
    await keepAlive.round()
    expect(pinged.sort()).toEqual([a.toString(), b.toString()].sort())
    expect(conns.every((c) => c.aborted === undefined)).toBe(true)
    expect(keepAlive.counters).toEqual({ pings: 2, failures: 0, aborted: 0 })
  })

  it('aborts every direct connection of a peer whose ping fails or times out', async () => {
    const [a, b, c] = peers as [PeerId, PeerId, PeerId]
    const conns = [connection(a), connection(a), connection(b), connection(c)]
    keepAlive = make(conns, (peer, options) => {
      if (peer.equals(a)) return Promise.reject(new Error('stream reset'))
      if (peer.equals(b)) {
        // Never answers: the keep-alive's own timeout (200 ms) must end it.
        return new Promise((_, reject) =>
          options.signal?.addEventListener('abort', () => reject(options.signal?.reason)),
        )
      }
      return Promise.resolve(3)
    })
    await keepAlive.round()
    expect(conns[0]!.aborted).toBeInstanceOf(KeepAliveFailedError)
    expect(conns[0]!.aborted?.message).toContain('stream reset')
    expect(conns[1]!.aborted).toBeInstanceOf(KeepAliveFailedError)
    expect(conns[2]!.aborted).toBeInstanceOf(KeepAliveFailedError)
    expect(conns[3]!.aborted).toBeUndefined()
    expect(keepAlive.counters).toEqual({ pings: 3, failures: 2, aborted: 3 })
  })

  it('does not fail a ping answered during a stall of its own loop', async () => {
    const conns = [connection(peers[0]!)]
    keepAlive = make(
      conns,
      (_, options) =>
        new Promise((resolve, reject) => {
          options.signal?.addEventListener('abort', () => reject(options.signal?.reason))
          // The loop stalls past the 200 ms timeout; the answer is read in its next turn, after
          // the timers, as a pong waiting in a socket would be.
          setImmediate(() => {
            const until = Date.now() + 500
            while (Date.now() < until) {
              /* a stalled event loop */
            }
            setImmediate(() => resolve(2))
          })
        }),
    )
    await keepAlive.round()
    expect(conns[0]!.aborted).toBeUndefined()
    expect(keepAlive.counters).toEqual({ pings: 1, failures: 0, aborted: 0 })
  })

  it('takes a ping already in flight (PingBusyError) as a sign of life', async () => {
    const conns = [connection(peers[0]!)]
    keepAlive = make(conns, () => Promise.reject(new PingBusyError('busy')))
    await keepAlive.round()
    expect(conns[0]!.aborted).toBeUndefined()
    expect(keepAlive.counters.failures).toBe(0)
  })

  it('counts no failure for a peer whose connection closed since the round listed it', async () => {
    const conns = [connection(peers[0]!)]
    keepAlive = make(conns, () => Promise.reject(new PingNotConnectedError('gone')))
    await keepAlive.round()
    expect(keepAlive.counters.failures).toBe(0)
  })

  it('aborts nothing for pings cut short by stop()', async () => {
    const conns = [connection(peers[0]!)]
    keepAlive = make(
      conns,
      (_, options) =>
        new Promise((_, reject) =>
          options.signal?.addEventListener('abort', () => reject(new Error('aborted'))),
        ),
    )
    keepAlive.start()
    const round = keepAlive.round()
    keepAlive.stop()
    await round
    expect(conns[0]!.aborted).toBeUndefined()
  })

  it('refuses a period or timeout that is not positive', () => {
    const node = { getConnections: () => [] }
    const ping = async () => 1
    expect(() => new KeepAlive(node, { intervalMs: 0, timeoutMs: 1, ping })).toThrow(InvalidArgumentError)
    expect(() => new KeepAlive(node, { intervalMs: 1, timeoutMs: -1, ping })).toThrow(InvalidArgumentError)
  })
})

describe('KeepAlive between real nodes', () => {
  const nodes: GossipLearnNode[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop()))
  })

  async function pair(): Promise<[GossipLearnNode, GossipLearnNode]> {
    const [a, b] = await Promise.all(
      [0, 1].map(() => createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false })),
    )
    nodes.push(a!, b!)
    await a!.dial(b!.getMultiaddrs()[0]!)
    return [a!, b!]
  }

  it('keeps a live connection, pinging on one kept stream round after round', async () => {
    const [a, b] = await pair()
    const pinger = new StreamPinger(a)
    const keepAlive = new KeepAlive(a, {
      intervalMs: 60_000,
      timeoutMs: 2000,
      ping: (p, o) => pinger.ping(p, o),
    })
    for (let i = 0; i < 3; i++) await keepAlive.round()
    expect(keepAlive.counters).toEqual({ pings: 3, failures: 0, aborted: 0 })
    expect(pinger.opened).toBe(1)
    expect(a.getConnections(b.peerId)).toHaveLength(1)
    pinger.stop()
  })

  it('aborts the connection to a peer that stops echoing', async () => {
    const [a, b] = await pair()
    // b reads pings but never answers: alive to TCP, dead to the protocol.
    await b.unhandle(PING_PROTOCOL)
    await b.handle(PING_PROTOCOL, () => {})
    const pinger = new StreamPinger(a)
    const keepAlive = new KeepAlive(a, {
      intervalMs: 60_000,
      timeoutMs: 500,
      ping: (p, o) => pinger.ping(p, o),
    })
    await keepAlive.round()
    expect(keepAlive.counters).toMatchObject({ pings: 1, failures: 1, aborted: 1 })
    expect(a.getConnections(b.peerId)).toHaveLength(0)
    pinger.stop()
  })
})

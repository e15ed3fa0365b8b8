/**
 * Emulated wide-area links between real gossip-learn libp2p nodes on 127.0.0.1 (TCP, Noise,
 * Yamux, gossipsub, ping): a libp2p ping measures the emulated RTT, a model-sized push is
 * paced at the uplink rate, and TopologyService turns the pings into RTTs and Vivaldi
 * coordinates that match the matrix.
 *
 * Bounds: the lower ones are hard (the emulation never releases data early; ping rounds to
 * whole ms, hence 1 ms of slack); the upper ones are loose, for a loaded 2-core machine.
 *
 * Most tests build the node stack themselves rather than through createNode, for one reason:
 * libp2p's connection monitor pings every connection every 10 s on /ipfs/ping/1.0.0 and aborts
 * the connection when that ping fails, and the ping service allows 1 outbound stream per
 * connection. A TopologyService ping in flight at that moment (likely when a ping takes
 * 100-400 ms over an emulated link) makes the monitor's ping fail and the connection drop.
 * These nodes raise the ping limits to 2 outbound / 4 inbound, the change createNode needs.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MinFilteredVivaldi, MinRttTracker } from '../../src/gossip/topology/filters.ts'
import { median } from '../../src/gossip/topology/rtt.ts'
import { TopologyService } from '../../src/gossip/topology/topology-service.ts'
import { distance } from '../../src/gossip/topology/vivaldi.ts'
import { createNode, DEFAULT_YAMUX_INIT } from '../../src/node/create-node.ts'
import { type WanEmulation, wanEmulation } from '../../src/testbed/wan-emulation.ts'
import type { WanLinks } from '../../src/testbed/wan-links.ts'
import { until as untilDefault } from './until.ts'

/** The gossip-learn transport stack (TCP, Noise, Yamux, identify, ping) behind an emulated WAN. */
async function startNode(privateKey: PrivateKey, wan: WanEmulation) {
  return createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [wan.encrypter(noise())],
    streamMuxers: [yamux(DEFAULT_YAMUX_INIT)],
    services: { identify: identify(), ping: ping({ maxOutboundStreams: 2, maxInboundStreams: 4 }) },
  })
}

type TestNode = Libp2p<{ ping: ReturnType<ReturnType<typeof ping>> }>

/** Slack above the configured RTT that a loaded machine may add (timers, event loop, GC). */
const UPPER_SLACK_MS = 40

// a and b share region x; c is in y, d in z. The x-y-z triangle (60, 100, 80 ms) is a right
// triangle, so 2-D coordinates can represent it exactly.
const REGIONS = ['x', 'x', 'y', 'z'] as const
const RTT = { 'x|x': 4, 'y|y': 4, 'z|z': 4, 'x|y': 60, 'x|z': 100, 'y|z': 80 }
const UPLINK_MBPS = 20
const PROBE_PROTOCOL = '/gossip-learn-test/sink/1.0.0'

const rttOf = (i: number, j: number): number => {
  const [a, b] = [REGIONS[i]!, REGIONS[j]!].sort()
  return RTT[`${a}|${b}` as keyof typeof RTT]
}

const until = (what: string, cond: () => boolean, ms = 30_000) => untilDefault(what, cond, ms, 50)

describe('wide-area emulation over real sockets', () => {
  const nodes: TestNode[] = []
  const wans: WanEmulation[] = []
  /** Per node: when the sink protocol received the last byte of a push. */
  const sinkDone = new Map<number, (at: number, bytes: number) => void>()

  beforeAll(async () => {
    const keys: PrivateKey[] = await Promise.all(REGIONS.map(() => generateKeyPair('Ed25519')))
    const links: WanLinks = {
      regions: { x: {}, y: {}, z: {} },
      rttMs: RTT,
      uplinkMbps: UPLINK_MBPS,
      peers: Object.fromEntries(keys.map((k, i) => [peerIdFromPrivateKey(k).toString(), REGIONS[i]!])),
    }
    for (const [i, privateKey] of keys.entries()) {
      const wan = wanEmulation({ links })
      wans.push(wan)
      const node = await startNode(privateKey, wan)
      nodes.push(node)
      await node.handle(PROBE_PROTOCOL, async (stream) => {
        let bytes = 0
        for await (const chunk of stream) bytes += chunk.byteLength
        sinkDone.get(i)?.(performance.now(), bytes)
        await stream.close({ signal: AbortSignal.timeout(5000) })
      })
    }
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) await nodes[i]!.dial(nodes[j]!.getMultiaddrs()[0]!)
    }
  })

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.stop()))
  })

  const pings = async (from: number, to: number, count: number): Promise<number[]> => {
    const out: number[] = []
    for (let k = 0; k < count; k++) {
      out.push(
        await nodes[from]!.services.ping.ping(nodes[to]!.peerId, { signal: AbortSignal.timeout(10_000) }),
      )
    }
    return out
  }

  it.each([
    [0, 1],
    [0, 2],
    [0, 3],
    [2, 3],
    [3, 1],
  ])('a libp2p ping from node %i to node %i measures the emulated RTT', async (from, to) => {
    const configured = rttOf(from, to)
    const rtts = await pings(from, to, 8)
    expect(Math.min(...rtts)).toBeGreaterThanOrEqual(configured - 1)
    // Queueing behind a busy event loop only ever adds delay: the fastest ping is the link's.
    expect(Math.min(...rtts)).toBeLessThanOrEqual(configured + UPPER_SLACK_MS)
  })

  it('a ping within a region is far shorter than across regions', async () => {
    const [intra, inter] = await Promise.all([pings(0, 1, 8), pings(0, 2, 8)])
    expect(median(intra)).toBeLessThan(median(inter) - 30)
  })

  it('paces a 400 kB push at the pair throughput and counts it as cross-region bytes', async () => {
    const size = 400_000
    // x|y at the default 0.1 % loss: Mathis gives 11 680 bit / 0.06 s x 38.73 = 7.54 Mbit/s, below the uplink.
    const rateMbps = Math.min(
      UPLINK_MBPS,
      wans[0]!.throughputMbps(nodes[0]!.peerId.toString(), nodes[2]!.peerId.toString())!,
    )
    expect(rateMbps).toBeCloseTo(7.54, 2)
    const before = wans[0]!.stats().bytesSentInterRegion
    const arrived = new Promise<{ at: number; bytes: number }>((resolve) => {
      sinkDone.set(2, (at, bytes) => resolve({ at, bytes }))
    })
    const stream = await nodes[0]!.dialProtocol(nodes[2]!.peerId, PROBE_PROTOCOL)
    const start = performance.now()
    const payload = new Uint8Array(size)
    for (let off = 0; off < size; off += 64 * 1024) {
      if (!stream.send(payload.subarray(off, Math.min(size, off + 64 * 1024)))) await stream.onDrain()
    }
    await stream.close({ signal: AbortSignal.timeout(10_000) })
    const { at, bytes } = await arrived
    expect(bytes).toBe(size)
    // Serialisation at the flow's rate (424 ms) plus the one-way delay (30 ms) is a floor...
    const floorMs = (size * 8) / (rateMbps * 1000) + rttOf(0, 2) / 2
    expect(at - start).toBeGreaterThanOrEqual(floorMs)
    // ...and the link does not run at a fraction of its rate either.
    expect(at - start).toBeLessThan(3 * floorMs)
    expect(wans[0]!.stats().bytesSentInterRegion - before).toBeGreaterThanOrEqual(size)
    expect(wans[0]!.stats().region).toBe('x')
  })

  it('TopologyService measures the matrix and learns coordinates that predict it', async () => {
    const services: TopologyService[] = []
    const index = new Map(nodes.map((n, i) => [n.peerId.toString(), i]))
    for (const node of nodes) {
      // The filters the daemon uses: the minimum of recent samples, so CPU-starved event loops
      // (other test files run beside this one) add no queueing delay to the estimates.
      const rtt = new MinRttTracker()
      // Stand-in for membership announcements: read the other service's current coordinate.
      const svc = new TopologyService(
        { node, logger: node.logger },
        {
          rtt,
          vivaldi: new MinFilteredVivaldi(rtt),
          intervalMs: 40,
          pingsPerTick: 3,
          // The trailing FIN of the previous ping stream arrives within a few ms of the pong.
          peerCooldownMs: 60,
          getRemoteCoordinate: (id) => services[index.get(id)!]?.coordinate(),
        },
      )
      services.push(svc)
    }
    // How well the current coordinates predict the configured matrix.
    const predictionError = () => {
      const relErrors: number[] = []
      let sameRegionWorstMs = 0
      for (let i = 0; i < nodes.length; i++) {
        for (let j = 0; j < nodes.length; j++) {
          if (i === j) continue
          const configured = rttOf(i, j)
          const predicted = distance(services[i]!.coordinate(), services[j]!.coordinate())
          if (REGIONS[i] !== REGIONS[j]) relErrors.push(Math.abs(predicted - configured) / configured)
          else sameRegionWorstMs = Math.max(sameRegionWorstMs, predicted - configured)
        }
      }
      return { median: median(relErrors), max: Math.max(...relErrors), sameRegionWorstMs }
    }
    const good = () => {
      const f = predictionError()
      return f.median < 0.15 && f.max < 0.3 && f.sameRegionWorstMs < 25
    }
    for (const s of services) s.start()
    try {
      // Vivaldi converges at a pace set by how often samples arrive, which a CPU shared with
      // other test files slows down: wait (bounded) for 120 updates each and a good fit.
      await until(
        '120 coordinate updates per node and coordinates that predict the matrix',
        () => services.every((s) => s.counters.coordinateUpdates >= 120) && good(),
        90_000,
      )
    } finally {
      for (const s of services) s.stop()
    }

    for (let i = 0; i < nodes.length; i++) {
      expect(services[i]!.counters.pingsFailed).toBe(0)
      for (let j = 0; j < nodes.length; j++) {
        if (i === j) continue
        const configured = rttOf(i, j)
        const measured = services[i]!.rttMs(nodes[j]!.peerId.toString())!
        expect(measured).toBeGreaterThanOrEqual(configured - 1)
        expect(measured).toBeLessThanOrEqual(configured + UPPER_SLACK_MS)
      }
    }
    const f = predictionError()
    expect(f.median).toBeLessThan(0.15)
    expect(f.max).toBeLessThan(0.3)
    // Even a same-region pair must be predicted near, not across an ocean.
    expect(f.sameRegionWorstMs).toBeLessThan(25)
  })
})

describe('createNode with the emulation as its encrypterWrapper', () => {
  it('delays a ping by the configured RTT', async () => {
    const keys = await Promise.all([0, 1].map(() => generateKeyPair('Ed25519')))
    const links: WanLinks = {
      regions: { near: {}, far: {} },
      rttMs: { 'near|near': 2, 'far|far': 2, 'far|near': 50 },
      uplinkMbps: UPLINK_MBPS,
      peers: {
        [peerIdFromPrivateKey(keys[0]!).toString()]: 'near',
        [peerIdFromPrivateKey(keys[1]!).toString()]: 'far',
      },
    }
    const pair = await Promise.all(
      keys.map((privateKey) =>
        createNode({
          privateKey,
          listen: ['/ip4/127.0.0.1/tcp/0'],
          encrypterWrapper: wanEmulation({ links }),
        }),
      ),
    )
    try {
      await pair[0]!.dial(pair[1]!.getMultiaddrs()[0]!)
      const rtts: number[] = []
      for (let k = 0; k < 4; k++) rtts.push(await pair[0]!.services.ping.ping(pair[1]!.peerId))
      expect(Math.min(...rtts)).toBeGreaterThanOrEqual(49)
      expect(Math.min(...rtts)).toBeLessThanOrEqual(50 + UPPER_SLACK_MS)
    } finally {
      await Promise.all(pair.map((n) => n.stop()))
    }
  })
})

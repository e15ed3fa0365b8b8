/**
 * Checks the wide-area emulation against its configuration, on real sockets: four nodes in one
 * process on 127.0.0.1 with the default topology (two in us-east, one in eu-west, one in
 * ap-southeast; 20 Mbit/s uplinks), then
 *   1. libp2p ping RTT per link vs the configured RTT;
 *   2. pacing: 4 MB down one stream per link, goodput between the first and the last byte received;
 *   3. a model push through ModelExchange (default 400 kB of float32) per link: time until the
 *      receiver has validated it, vs a flow-control-free ideal (1 RTT of multistream-select, then
 *      serialisation and the one-way delay); the gap is yamux's 256 KiB initial stream window;
 *   4. the same push to two peers at once (fanout 2): both share one uplink.
 *
 *   npx tsx scripts/bench/wan.ts [--pings 20] [--reps 5] [--kb 400] [--uplink-mbps 20] [--initial-window-kib 256]
 *
 * Nodes use the gossip-learn stack with ping limits raised to 2 outbound / 4 inbound streams
 * (see test/e2e/wan.test.ts for why the default 1 / 2 lets libp2p's connection monitor drop
 * connections while pings take emulated time).
 */
import '../../src/polyfill.ts'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { ModelExchange } from '../../src/gossip/exchange.ts'
import { median } from '../../src/gossip/topology/rtt.ts'
import { layoutOf } from '../../src/gossip/wire/codec.ts'
import type { ModelState } from '../../src/model/types.ts'
import { DEFAULT_YAMUX_INIT } from '../../src/node/create-node.ts'
import { type WanEmulation, wanEmulation } from '../../src/testbed/wan-emulation.ts'
import { DEFAULT_WAN_LINKS, regionRttMs } from '../../src/testbed/wan-links.ts'
import { parseBenchArgs } from './flags.ts'

const args = parseBenchArgs('bench:wan', import.meta.url, {
  pings: { type: 'string', default: '20' },
  reps: { type: 'string', default: '5' },
  kb: { type: 'string', default: '400' },
  'uplink-mbps': { type: 'string', default: String(DEFAULT_WAN_LINKS.uplinkMbps) },
  /** Yamux initial stream window for every node (default createNode's 256 KiB); 16384 isolates pacing from flow control. */
  'initial-window-kib': { type: 'string' },
})
const pingCount = Number(args.pings)
const reps = Number(args.reps)
const floats = (Number(args.kb) * 1000) / 4
const uplinkMbps = Number(args['uplink-mbps'])
const REGIONS = ['us-east', 'us-east', 'eu-west', 'ap-southeast']

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!
}

const keys = await Promise.all(REGIONS.map(() => generateKeyPair('Ed25519')))
const ids = keys.map((k) => peerIdFromPrivateKey(k).toString())
const links = {
  ...DEFAULT_WAN_LINKS,
  uplinkMbps,
  peers: Object.fromEntries(ids.map((id, i) => [id, REGIONS[i]!])),
}
const wans: WanEmulation[] = []
const values = new Float32Array(floats).map((_, i) => Math.sin(i))
const state: ModelState = { arch: 'bench', age: 1, tensors: [{ name: 'w', shape: [floats], values }] }
const arrived = new Map<string, () => void>()
const SINK = '/gossip-learn-bench/sink/1.0.0'
const sinkDone = new Map<string, (first: number, last: number, bytes: number) => void>()

const yamuxInit =
  args['initial-window-kib'] === undefined
    ? DEFAULT_YAMUX_INIT
    : {
        streamOptions: {
          ...DEFAULT_YAMUX_INIT.streamOptions,
          initialStreamWindowSize: Number(args['initial-window-kib']) * 1024,
        },
      }

async function startNode(privateKey: PrivateKey, wan: WanEmulation) {
  return createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [wan.encrypter(noise())],
    streamMuxers: [yamux(yamuxInit)],
    services: { identify: identify(), ping: ping({ maxOutboundStreams: 2, maxInboundStreams: 4 }) },
  })
}

const nodes: Array<Awaited<ReturnType<typeof startNode>>> = []
const exchanges: ModelExchange[] = []
for (const [i, privateKey] of keys.entries()) {
  const wan = wanEmulation({ links })
  wans.push(wan)
  const node = await startNode(privateKey, wan)
  nodes.push(node)
  await node.handle(SINK, async (stream, connection) => {
    let first = 0
    let last = 0
    let got = 0
    for await (const chunk of stream) {
      last = performance.now()
      if (got === 0) first = last
      got += chunk.byteLength
    }
    sinkDone.get(`${connection.remotePeer}>${ids[i]}`)?.(first, last, got)
  })
  const exchange = new ModelExchange(
    { node, logger: defaultLogger() },
    {
      task: 'bench-wan',
      expectedLayout: layoutOf(state),
      onModel: (_s, _m, from) => {
        arrived.get(`${from}>${ids[i]}`)?.()
      },
    },
  )
  await exchange.start()
  exchanges.push(exchange)
}
for (let i = 0; i < nodes.length; i++) {
  for (let j = i + 1; j < nodes.length; j++) await nodes[i]!.dial(nodes[j]!.getMultiaddrs()[0]!)
}

const label = (i: number, j: number) => `${i}:${REGIONS[i]} -> ${j}:${REGIONS[j]}`
const rtt = (i: number, j: number) => regionRttMs(links, REGIONS[i]!, REGIONS[j]!)
const pairs: Array<[number, number]> = [
  [0, 1],
  [0, 2],
  [0, 3],
  [2, 3],
  [3, 0],
]

console.log(`\n1. libp2p ping RTT (${pingCount} pings per link, ms; ping reports whole ms)`)
console.log('| link | configured | min | median | p90 | max |')
console.log('|---|---:|---:|---:|---:|---:|')
for (const [i, j] of pairs) {
  const xs: number[] = []
  for (let k = 0; k < pingCount; k++) xs.push(await nodes[i]!.services.ping.ping(nodes[j]!.peerId))
  console.log(
    `| ${label(i, j)} | ${rtt(i, j)} | ${Math.min(...xs)} | ${median(xs)} | ${quantile(xs, 0.9)} | ${Math.max(...xs)} |`,
  )
}

const bytes = floats * 4
const serialMs = (n: number) => (n * 8) / (uplinkMbps * 1000)

const STREAM_BYTES = 4_000_000
console.log(`\n2. pacing: ${STREAM_BYTES / 1e6} MB down one stream, goodput from first to last byte received`)
console.log('| link | uplink Mbit/s | goodput Mbit/s |')
console.log('|---|---:|---:|')
for (const [i, j] of pairs) {
  const done = new Promise<number>((resolve) =>
    sinkDone.set(`${ids[i]}>${ids[j]}`, (first, last, got) =>
      resolve(((got - 64 * 1024) * 8) / (last - first) / 1000),
    ),
  )
  const stream = await nodes[i]!.dialProtocol(nodes[j]!.peerId, SINK)
  const payload = new Uint8Array(STREAM_BYTES)
  for (let off = 0; off < STREAM_BYTES; off += 64 * 1024) {
    if (!stream.send(payload.subarray(off, off + 64 * 1024))) await stream.onDrain()
  }
  await stream.close()
  // The first 64 KiB chunk's arrival starts the clock, so it is not counted.
  console.log(`| ${label(i, j)} | ${uplinkMbps} | ${(await done).toFixed(2)} |`)
}

const pushOnce = async (from: number, tos: number[]): Promise<number> => {
  const done = tos.map(
    (to) => new Promise<void>((resolve) => arrived.set(`${ids[from]}>${ids[to]}`, resolve)),
  )
  const t0 = performance.now()
  await Promise.all(tos.map((to) => exchanges[from]!.push(nodes[to]!.peerId, state)))
  await Promise.all(done)
  return performance.now() - t0
}

console.log(
  `\n3. model push of ${bytes / 1000} kB (${reps} reps per link, ms until the receiver validated it)`,
)
console.log(
  '| link | configured RTT | ideal (1.5 RTT + serialisation) | min | median | max | median - ideal, in RTTs |',
)
console.log('|---|---:|---:|---:|---:|---:|---:|')
for (const [i, j] of pairs) {
  const xs: number[] = []
  for (let k = 0; k < reps; k++) xs.push(await pushOnce(i, [j]))
  const ideal = rtt(i, j) * 1.5 + serialMs(bytes)
  console.log(
    `| ${label(i, j)} | ${rtt(i, j)} | ${ideal.toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${median(xs).toFixed(0)} | ${Math.max(...xs).toFixed(0)} | ${((median(xs) - ideal) / rtt(i, j)).toFixed(2)} |`,
  )
}

console.log(`\n4. fanout 2 from node 0 to nodes 1 and 2 at once (shared ${uplinkMbps} Mbit/s uplink)`)
const fan: number[] = []
for (let k = 0; k < reps; k++) fan.push(await pushOnce(0, [1, 2]))
// The near stream is set up first and starts the uplink; the far one's setup overlaps it.
const fanIdeal = rtt(0, 1) + serialMs(2 * bytes) + rtt(0, 2) / 2
console.log(
  `median ${median(fan).toFixed(0)} ms (min ${Math.min(...fan).toFixed(0)}), ideal ${fanIdeal.toFixed(0)} ms (both models through one uplink)`,
)

console.log('\nnode 0 emulation counters:', JSON.stringify(wans[0]!.stats()))
for (const e of exchanges) await e.stop()
await Promise.all(nodes.map((n) => n.stop()))

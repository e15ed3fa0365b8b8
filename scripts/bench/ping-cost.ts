/**
 * What one RTT probe costs on the wire and in CPU: libp2p's `ping()` (a new stream per ping)
 * against StreamPinger (one kept stream per peer), between two real nodes on loopback in this
 * process. Counted per ping: Noise frames encrypted by both nodes (each frame is also a socket
 * write and a decrypt at the other end) and CPU microseconds of the process. Printed per round
 * and as the kept stream's ratio to a new stream's, median over rounds; the two take turns within
 * each round so both see the same load.
 *
 *   npm run bench:ping-cost -- [--pings 200] [--rounds 5]
 *
 * The nodes subscribe to no topic and their keep-alive pings are off, so the only traffic between
 * them is the pings.
 */
import '../../src/polyfill.ts'
import type { Registry } from 'prom-client'
import { StreamPinger } from '../../src/gossip/topology/stream-ping.ts'
import { createNode, type GossipLearnNode } from '../../src/node/create-node.ts'
import { createMetricsRegistry } from '../../src/node/metrics.ts'
import { benchFlags, parseBenchArgs } from './flags.ts'

const flags = benchFlags('bench:ping-cost')
const values = parseBenchArgs('bench:ping-cost', import.meta.url, {
  pings: { type: 'string' },
  rounds: { type: 'string' },
})
const pings = flags.int('pings', values.pings, 200)
const rounds = flags.int('rounds', values.rounds, 5)

async function counter(registry: Registry, name: string): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) return 0
  const got = await metric.get()
  return got.values.reduce((sum, v) => sum + v.value, 0)
}

const registries = [createMetricsRegistry(), createMetricsRegistry()]
const nodes: GossipLearnNode[] = await Promise.all(
  registries.map((registry) =>
    createNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      metrics: { registry },
      // No keep-alive pings of libp2p's own during the measurement.
      timeouts: { pingEveryMs: 3_600_000 },
    }),
  ),
)
const [a, b] = nodes as [GossipLearnNode, GossipLearnNode]
await a.dial(b.getMultiaddrs()[0]!)
// Identify and the gossipsub stream set-up finish before anything is counted.
await new Promise((r) => setTimeout(r, 1500))

const frames = async (): Promise<number> => {
  let n = 0
  for (const r of registries) n += await counter(r, 'libp2p_noise_encrypted_packets_total')
  return n
}

interface Cost {
  frames: number
  cpuUs: number
}

async function measure(ping: () => Promise<number>): Promise<Cost> {
  const f0 = await frames()
  const c0 = process.cpuUsage()
  for (let i = 0; i < pings; i++) await ping()
  const c = process.cpuUsage(c0)
  // Trailing FINs and window updates of the last ping.
  await new Promise((r) => setTimeout(r, 200))
  return { frames: ((await frames()) - f0) / pings, cpuUs: (c.user + c.system) / pings }
}

const pinger = new StreamPinger(a)
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
const ratios = { frames: [] as number[], cpu: [] as number[] }
console.log(`bench:ping-cost: ${pings} pings per side per round, ${rounds} rounds`)
for (let round = 0; round < rounds; round++) {
  const fresh = await measure(() => a.services.ping.ping(b.peerId))
  const kept = await measure(() => pinger.ping(b.peerId))
  ratios.frames.push(kept.frames / fresh.frames)
  ratios.cpu.push(kept.cpuUs / fresh.cpuUs)
  console.log(
    `round ${round + 1}: new stream ${fresh.frames.toFixed(1)} frames, ${fresh.cpuUs.toFixed(0)} us CPU per ping; ` +
      `kept stream ${kept.frames.toFixed(1)} frames, ${kept.cpuUs.toFixed(0)} us`,
  )
}
console.log(
  `kept / new stream, median of ${rounds} rounds: frames ${median(ratios.frames).toFixed(2)}x, CPU ${median(ratios.cpu).toFixed(2)}x`,
)
pinger.stop()
await Promise.all(nodes.map((n) => n.stop()))

/**
 * Throughput of the model exchange: an 8 MiB model (2M float32) pushed N times
 * over /gossip-learn/model/1.0.0 (TCP + Noise + Yamux, full validation on
 * receipt) between two nodes on loopback, against the same bytes over a raw TCP
 * socket on loopback (receiver copies them into a model-sized buffer too).
 *
 * A third path, "bare", sends the same bytes over a plain libp2p stream whose
 * handler only copies them into a model-sized buffer: the difference between
 * bare and exchange is the cost of the exchange itself (framing, validation),
 * the difference between raw and bare the cost of Noise + Yamux.
 *
 * The receiving node runs in a child process (as a real peer would), unless
 * --in-process. Raw, bare and exchange batches alternate for --rounds rounds and
 * the median per-round ratio is reported, so load from other processes on the
 * box hits every side of each ratio alike. CPU ms per MiB of each process is
 * reported too: it is steadier than MiB/s on a shared machine.
 *
 *   npm run bench:exchange -- [--rounds 5] [--reps 10] [--mib 8] [--chunk-kib 256] [--inflight 1]
 *                             [--window-mib 16] [--initial-window-kib 256] [--in-process]
 */
import '../../src/polyfill.ts'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { defaultLogger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { ModelExchange } from '../../src/gossip/exchange.ts'
import { layoutOf } from '../../src/gossip/wire/codec.ts'
import type { ModelState } from '../../src/model/types.ts'
import { type CreateNodeInit, createNode } from '../../src/node/create-node.ts'
import { parseBenchArgs } from './flags.ts'

const args = parseBenchArgs('bench:exchange', import.meta.url, {
  rounds: { type: 'string', default: '5' },
  reps: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  mib: { type: 'string', default: '8' },
  'chunk-kib': { type: 'string', default: '256' },
  'window-mib': { type: 'string' },
  'initial-window-kib': { type: 'string' },
  'in-process': { type: 'boolean', default: false },
  inflight: { type: 'string', default: '1' },
  role: { type: 'string', default: 'main' },
})
const rounds = Number(args.rounds)
const reps = Number(args.reps)
const warmup = Number(args.warmup)
const floats = (Number(args.mib) * 1024 * 1024) / 4
const modelBytes = floats * 4
const chunkBytes = Number(args['chunk-kib']) * 1024
const inflight = Number(args.inflight)

function yamuxInit(): CreateNodeInit['yamux'] {
  const streamOptions: NonNullable<CreateNodeInit['yamux']>['streamOptions'] = {}
  if (args['window-mib'] != null) streamOptions.maxStreamWindowSize = Number(args['window-mib']) * 1048576
  if (args['initial-window-kib'] != null)
    streamOptions.initialStreamWindowSize = Number(args['initial-window-kib']) * 1024
  return { streamOptions }
}

function makeState(): ModelState {
  const values = new Float32Array(floats)
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i)
  return { arch: 'bench', age: 1, tensors: [{ name: 'w', shape: [floats], values }] }
}

type Kind = 'raw' | 'bare' | 'libp2p'
const BARE_PROTOCOL = '/gossip-learn/bench-bare/1.0.0'

/** Copies incoming bytes into a fresh model-sized buffer per model, as a receiver must. */
function modelSink(onModel: () => void): (chunk: Uint8Array) => void {
  let buf = new Uint8Array(modelBytes)
  let filled = 0
  return (chunk) => {
    let off = 0
    while (off < chunk.byteLength) {
      const n = Math.min(modelBytes - filled, chunk.byteLength - off)
      buf.set(chunk.subarray(off, off + n), filled)
      filled += n
      off += n
      if (filled === modelBytes) {
        buf = new Uint8Array(modelBytes)
        filled = 0
        onModel()
      }
    }
  }
}

/** Counts models received on each path; `until(kind, n)` resolves once n have arrived. */
async function startReceiver() {
  const counts: Record<Kind, number> = { raw: 0, bare: 0, libp2p: 0 }
  const waiters: Array<{ kind: Kind; n: number; resolve: () => void }> = []
  const bump = (kind: Kind): void => {
    counts[kind]++
    for (const w of waiters.filter((w) => w.kind === kind && counts[kind] >= w.n)) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve()
    }
  }
  const node = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], yamux: yamuxInit() })
  const exchange = new ModelExchange(
    { node, logger: defaultLogger() },
    { task: 'bench', expectedLayout: layoutOf(makeState()), onModel: () => bump('libp2p') },
  )
  await exchange.start()
  await node.handle(BARE_PROTOCOL, (stream) => {
    const sink = modelSink(() => bump('bare'))
    stream.addEventListener('message', (evt) => {
      for (const buf of evt.data instanceof Uint8Array ? [evt.data] : evt.data) sink(buf)
    })
    stream.addEventListener('remoteCloseWrite', () => {
      stream.close().catch(() => {})
    })
  })

  const server = net.createServer((sock) => {
    const sink = modelSink(() => bump('raw'))
    sock.on('data', (chunk: Buffer) => sink(chunk))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  let cpuMark = process.cpuUsage()
  return {
    addr: node.getMultiaddrs()[0]!.toString(),
    port: (server.address() as net.AddressInfo).port,
    /** Start counting this process's CPU time. */
    mark: async (): Promise<void> => {
      cpuMark = process.cpuUsage()
    },
    /** Resolves with the CPU ms used since mark() once `n` models of `kind` have arrived. */
    until: async (kind: Kind, n: number): Promise<number> => {
      if (counts[kind] < n) await new Promise<void>((resolve) => waiters.push({ kind, n, resolve }))
      const cpu = process.cpuUsage(cpuMark)
      return (cpu.user + cpu.system) / 1000
    },
    rejected: () => exchange.counters.rejected,
    stop: async () => {
      server.close()
      await exchange.stop()
      await node.stop()
    },
  }
}

type Receiver = Pick<Awaited<ReturnType<typeof startReceiver>>, 'addr' | 'port' | 'mark' | 'until' | 'stop'>

/** The receiver in a child process, driven over IPC. */
async function forkReceiver(): Promise<Receiver> {
  const child = fork(process.argv[1]!, [...process.argv.slice(2), '--role', 'receiver'], { stdio: 'inherit' })
  const [ready] = (await once(child, 'message')) as [{ addr: string; port: number }]
  let seq = 0
  const pending = new Map<number, (cpuMs: number) => void>()
  child.on('message', (m: { done?: number; cpuMs?: number }) => {
    if (m.done != null) pending.get(m.done)?.(m.cpuMs ?? 0)
  })
  const call = (msg: object): Promise<number> =>
    new Promise<number>((resolve) => {
      const id = ++seq
      pending.set(id, resolve)
      child.send({ ...msg, id })
    })
  return {
    ...ready,
    mark: async () => {
      await call({ mark: true })
    },
    until: (kind, n) => call({ until: { kind, n } }),
    stop: async () => {
      child.send({ stop: true })
      await once(child, 'exit')
    },
  }
}

async function receiverMain(): Promise<void> {
  const r = await startReceiver()
  type Msg = { id?: number; mark?: boolean; until?: { kind: Kind; n: number }; stop?: boolean }
  process.on('message', (m: Msg) => {
    if (m.mark === true) r.mark().then(() => process.send!({ done: m.id }))
    if (m.until != null)
      r.until(m.until.kind, m.until.n).then((cpuMs) => process.send!({ done: m.id, cpuMs }))
    if (m.stop === true) {
      const rejected = r.rejected()
      if (Object.keys(rejected).length > 0) console.error('receiver rejected models:', rejected)
      r.stop().then(() => process.exit(0))
    }
  })
  process.send!({ addr: r.addr, port: r.port })
}

async function main(): Promise<void> {
  const state = makeState()
  const payload = new Uint8Array(state.tensors[0]!.values.buffer)
  const rx: Receiver = args['in-process'] ? await startReceiver() : await forkReceiver()

  const node = await createNode({ listen: ['/ip4/127.0.0.1/tcp/0'], yamux: yamuxInit() })
  const tx = new ModelExchange({ node, logger: defaultLogger() }, { task: 'bench', chunkBytes })
  await tx.start()
  const remote = multiaddr(rx.addr)
  const peer = (await node.dial(remote)).remotePeer

  const sock = net.connect(rx.port, '127.0.0.1')
  await once(sock, 'connect')
  sock.setNoDelay(true)
  const rawPush = async (): Promise<void> => {
    for (let off = 0; off < modelBytes; off += chunkBytes) {
      if (!sock.write(payload.subarray(off, off + chunkBytes))) await once(sock, 'drain')
    }
  }
  const barePush = async (): Promise<void> => {
    const stream = await node.dialProtocol(peer, BARE_PROTOCOL)
    for (let off = 0; off < modelBytes; off += chunkBytes) {
      if (!stream.send(payload.subarray(off, off + chunkBytes))) await stream.onDrain()
    }
    await stream.close()
  }
  const sent: Record<Kind, number> = { raw: 0, bare: 0, libp2p: 0 }
  interface Batch {
    mibps: number
    /** CPU ms per MiB, sender and receiver processes (both are one process with --in-process). */
    txCpu: number
    rxCpu: number
  }
  /** `n` sequential pushes, timed until the receiver has them all. */
  const batch = async (kind: Kind, n: number): Promise<Batch> => {
    await rx.mark()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    if (kind === 'raw') {
      for (let i = 0; i < n; i++) await rawPush()
    } else if (kind === 'bare') {
      for (let i = 0; i < n; i++) await barePush()
    } else {
      // `inflight` pushes at a time: the next stream's negotiation overlaps the current transfer.
      let next = 0
      const lane = async (): Promise<void> => {
        while (next < n) {
          next++
          await tx.push(peer, state)
        }
      }
      await Promise.all(Array.from({ length: inflight }, lane))
    }
    sent[kind] += n
    const rxCpuMs = await rx.until(kind, sent[kind])
    const seconds = (performance.now() - t0) / 1000
    const cpu = process.cpuUsage(cpu0)
    const mib = (n * modelBytes) / 1048576
    return { mibps: mib / seconds, txCpu: (cpu.user + cpu.system) / 1000 / mib, rxCpu: rxCpuMs / mib }
  }

  console.log(
    `model ${modelBytes / 1048576} MiB x ${reps} pushes x ${rounds} rounds, chunk ${chunkBytes / 1024} KiB, ` +
      `${inflight} push(es) in flight, ` +
      `receiver ${args['in-process'] ? 'in-process' : 'in a child process'}, yamux ${JSON.stringify(yamuxInit())}`,
  )
  await batch('raw', warmup)
  await batch('bare', warmup)
  await batch('libp2p', warmup)
  const results: Array<Record<Kind, Batch> & { ratio: number; bareRatio: number }> = []
  const fmt = (b: Batch): string =>
    `${b.mibps.toFixed(0).padStart(5)} MiB/s (cpu ms/MiB tx ${b.txCpu.toFixed(2)} rx ${b.rxCpu.toFixed(2)})`
  for (let r = 0; r < rounds; r++) {
    const raw = await batch('raw', reps)
    const bare = await batch('bare', reps)
    const libp2p = await batch('libp2p', reps)
    results.push({ raw, bare, libp2p, ratio: libp2p.mibps / raw.mibps, bareRatio: bare.mibps / raw.mibps })
    console.log(`round ${r + 1}:      raw ${fmt(raw)}`)
    console.log(`         bare stream ${fmt(bare)}  ratio ${(bare.mibps / raw.mibps).toFixed(3)}`)
    console.log(`            exchange ${fmt(libp2p)}  ratio ${(libp2p.mibps / raw.mibps).toFixed(3)}`)
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const line = (label: string, kind: Kind): void => {
    const med = (k: keyof Batch): string => median(results.map((r) => r[kind][k])).toFixed(2)
    console.log(`${label} median ${med('mibps')} MiB/s, cpu ms/MiB tx ${med('txCpu')} rx ${med('rxCpu')}`)
  }
  line('raw tcp:                 ', 'raw')
  line('bare libp2p stream:      ', 'bare')
  line('model exchange (libp2p): ', 'libp2p')
  console.log(`ratio bare/raw:           median ${median(results.map((r) => r.bareRatio)).toFixed(3)}`)
  console.log(`ratio exchange/raw:       median ${median(results.map((r) => r.ratio)).toFixed(3)}`)

  sock.destroy()
  await tx.stop()
  await node.stop()
  await rx.stop()
}

if (args.role === 'receiver') await receiverMain()
else await main()

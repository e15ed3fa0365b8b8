/**
 * Where one default daemon's resident memory goes, stage by stage in this process: node + tsx,
 * the tfjs and libp2p modules, the wasm backend, the dataset, the started daemon, then every
 * 10 s of training. Each reading is process.memoryUsage() after two full collections, plus the
 * wasm backend's heap and tfjs's tensor count; docs/BENCHMARKS.md (Memory) has the figures.
 *
 *   node --expose-gc --import tsx scripts/bench/memory.ts [--seconds 30] [--data-dir DIR]
 *       [--source-maps] [--no-gc] [--small-heap]
 *
 * `--source-maps` keeps the source maps tsx turns on (the CLI turns them off), `--no-gc` reads
 * without forcing collections (what a running daemon really holds), `--small-heap` tunes V8's
 * heap as `start` does (src/cli/heap.ts).
 */
import '../../src/polyfill.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseBenchArgs } from './flags.ts'

const values = parseBenchArgs('bench:memory', import.meta.url, {
  seconds: { type: 'string', default: '30' },
  'data-dir': { type: 'string' },
  'source-maps': { type: 'boolean', default: false },
  'no-gc': { type: 'boolean', default: false },
  'small-heap': { type: 'boolean', default: false },
})
if (!values['source-maps']) process.setSourceMapsEnabled(false)
const heap = values['small-heap'] ? (await import('../../src/cli/heap.ts')).tuneHeap([]) : undefined

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined && !values['no-gc']) console.log('(no --expose-gc: readings without forced collections)')
const MiB = (n: number) => (n / 2 ** 20).toFixed(1).padStart(6)
const extras: Array<() => string> = []

function reading(stage: string): void {
  if (!values['no-gc']) {
    gc?.()
    gc?.()
  }
  const m = process.memoryUsage()
  console.log(
    `${stage.padEnd(30)} rss ${MiB(m.rss)}  heapUsed ${MiB(m.heapUsed)}  heapTotal ${MiB(m.heapTotal)}  ` +
      `external ${MiB(m.external)}  arrayBuffers ${MiB(m.arrayBuffers)}  ${extras.map((f) => f()).join('  ')}`,
  )
}

reading('node + tsx')
const tf = await import('../../src/model/tf.ts')
reading('import tfjs core + layers')
const { parseStartArgs } = await import('../../src/cli/args.ts')
const { startDaemon } = await import('../../src/node/daemon.ts')
reading('import daemon + libp2p')
const { initBackend } = await import('../../src/model/backend.ts')
await initBackend()
const wasmHeap = () => {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }
  return b.wasm?.HEAPU8 !== undefined ? `wasmHeap ${MiB(b.wasm.HEAPU8.buffer.byteLength)}` : ''
}
extras.push(wasmHeap)
reading('backend')
const { loadDataset } = await import('../../src/data/registry.ts')
// Held until the daemon is up, as a host of several daemons does; the daemon keeps its share only.
let held: unknown = loadDataset('mnist')
reading('dataset mnist loaded')
const dir = values['data-dir'] ?? (await mkdtemp(join(tmpdir(), 'gl-memory-')))
const daemon = await startDaemon(
  parseStartArgs(['--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--http', '0']),
  { beforeTraining: () => heap?.running() },
)
reading('daemon started')
held = undefined
extras.push(() => `tensors ${tf.memory().numTensors}`)
reading('dataset released')
for (let t = 10; t <= Number(values.seconds); t += 10) {
  await new Promise((r) => setTimeout(r, 10_000))
  reading(`t=${t}s steps ${daemon.status().steps}`)
}
await daemon.stop()
if (values['data-dir'] === undefined) await rm(dir, { recursive: true, force: true })
void held

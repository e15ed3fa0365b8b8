/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`) by self time: per category (training,
 * evaluation, wire codec, merge, libp2p/crypto, GC, ...) and the top functions. Categories are
 * decided by the first frame, from the sample's leaf up, that names a file of ours or a known
 * package; a leaf in native code (wasm kernels, GC, the program itself) is categorised by its
 * callers, so a tfjs kernel called from evaluate() counts as evaluation.
 *
 *   npx tsx scripts/cpuprofile-summary.ts FILE_OR_DIR... [--top 25] [--category PREFIX] [--skip S]
 *
 * `--skip S` leaves out each profile's first S seconds (start-up: module loading, the dataset);
 * `--category PREFIX` lists the top functions of the categories starting with PREFIX only.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}
interface ProfileNode {
  id: number
  callFrame: CallFrame
  parent?: number
  children?: number[]
}
interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/**
 * What a sample is spent on. The leaf decides, except where it says little: a native builtin
 * (no URL: a typed-array copy, a Map lookup) or a tfjs/wasm frame (a kernel runs for whoever
 * called it; so does our BatchMatMul kernel in conv-grad.ts). Those are passed over, up to the first frame that names a file of ours or another
 * package, so a kernel under our evaluate() is evaluation and one under trainSteps() training.
 */
const RULES: Array<[category: string, test: (url: string) => boolean]> = [
  ['evaluation', (u) => u.includes('/src/model/evaluate.ts')],
  ['training (tfjs kernels, backprop, batches)', (u) => /\/src\/model\/(train|mlp-step|adam)\.ts/.test(u)],
  ['model state copies (get/setState)', (u) => u.includes('/src/model/state.ts')],
  ['merge (align, average, varcorr)', (u) => u.includes('/src/merge/') || u.includes('munkres')],
  ['wire encode/decode', (u) => u.includes('/src/gossip/wire/') || u.includes('protons-runtime')],
  ['checkpoint', (u) => u.includes('/src/node/checkpoint.ts')],
  [
    'dashboard / metrics / status',
    (u) => /\/src\/node\/(dashboard|metrics|http|daemon)/.test(u) || u.includes('prom-client'),
  ],
  ['learner / defences', (u) => /\/src\/gossip\/(learner|defences)/.test(u)],
  ['exchange (streams, framing)', (u) => u.includes('/src/gossip/exchange.ts')],
  ['topology (ping, Vivaldi)', (u) => u.includes('/src/gossip/topology/') || u.includes('@libp2p/ping')],
  ['membership / gossipsub', (u) => u.includes('/src/gossip/membership') || u.includes('gossipsub')],
  ['startup: dataset decoding', (u) => u.includes('/src/data/')],
  ['noise crypto', (u) => /libp2p-noise|@noble|chacha|poly1305|x25519|ed25519|internal\/crypto/.test(u)],
  ['yamux', (u) => u.includes('yamux')],
  ['libp2p (other)', (u) => /@libp2p|libp2p|@multiformats|uint8arraylist|\/it-|p-queue|race-signal/.test(u)],
  ['startup: module loading (tsx)', (u) => /\/tsx\/|esbuild|node:internal\/modules|cjs-module-lexer/.test(u)],
  ['node streams / net', (u) => /node:internal\/(stream|net|streams|http)|node:net|node:http/.test(u)],
  ['timers', (u) => u.includes('node:internal/timers')],
]

const NATIVE = new Map([
  ['(garbage collector)', 'GC'],
  ['(idle)', 'idle'],
  ['(program)', 'program (native, unattributed)'],
])

/** Frames that run for their caller: builtins, tfjs, wasm, and our own wasm kernels (conv-grad.ts). */
const passOver = (f: CallFrame) =>
  f.url === '' ||
  f.url.startsWith('wasm://') ||
  f.url.includes('@tensorflow/') ||
  f.url.includes('/src/model/conv-grad.ts')

function categorise(stack: CallFrame[]): string {
  const leaf = stack[0]
  const native = leaf === undefined ? undefined : NATIVE.get(leaf.functionName)
  if (native !== undefined) return native
  let tfjs = false
  for (const frame of stack) {
    if (passOver(frame)) {
      tfjs ||= frame.url !== ''
      continue
    }
    for (const [name, test] of RULES) if (test(frame.url)) return name
    return tfjs ? 'tfjs (no caller of ours)' : 'other'
  }
  return tfjs ? 'tfjs (no caller of ours)' : 'other (native)'
}

/**
 * The CLI runs the compiled `dist/` when it is current (bin/gossip-learn.js), so a daemon's frames
 * name `dist/model/train.js`: read them as the `src/model/train.ts` they were built from, which the
 * rules above name (esbuild keeps one output file per source file).
 */
function asSource(url: string): string {
  if (url.includes('node_modules/')) return url
  return url.replace(/\/dist\/(.+)\.js$/, '/src/$1.ts')
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length)
  const src = url.indexOf('/src/')
  if (src >= 0) return url.slice(src + 1)
  return url.replace(/^file:\/\//, '')
}

async function profileFiles(paths: string[]): Promise<string[]> {
  const out: string[] = []
  for (const p of paths) {
    if ((await stat(p)).isDirectory()) {
      for (const f of await readdir(p, { recursive: true }))
        if (f.endsWith('.cpuprofile')) out.push(join(p, f))
    } else out.push(p)
  }
  return out
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    category: { type: 'string' },
    skip: { type: 'string', default: '0' },
  },
})
if (positionals.length === 0) {
  console.error('usage: npx tsx scripts/cpuprofile-summary.ts FILE_OR_DIR... [--top N]')
  process.exit(2)
}

const byCategory = new Map<string, number>()
const byFunction = new Map<string, number>()
let totalUs = 0
let wallUs = 0
const files = await profileFiles(positionals)
for (const file of files) {
  const prof = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  for (const n of prof.nodes) n.callFrame.url = asSource(n.callFrame.url)
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]))
  for (const n of prof.nodes) for (const c of n.children ?? []) nodes.get(c)!.parent = n.id
  const stackCache = new Map<number, string>()
  const stackOf = (id: number): CallFrame[] => {
    const out: CallFrame[] = []
    for (
      let cur = nodes.get(id);
      cur !== undefined;
      cur = cur.parent === undefined ? undefined : nodes.get(cur.parent)
    )
      out.push(cur.callFrame)
    return out
  }
  const skipUs = Number(values.skip) * 1e6
  wallUs += Math.max(0, prof.endTime - prof.startTime - skipUs)
  let at = prof.startTime
  prof.samples.forEach((id, i) => {
    at += prof.timeDeltas[i] ?? 0
    const dt = prof.timeDeltas[i + 1] ?? 0
    if (at - prof.startTime < skipUs) return
    let cat = stackCache.get(id)
    if (cat === undefined) {
      cat = categorise(stackOf(id))
      stackCache.set(id, cat)
    }
    if (cat === 'idle') return
    totalUs += dt
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + dt)
    if (values.category !== undefined && !cat.startsWith(values.category)) return
    const f = nodes.get(id)!.callFrame
    const key = `${f.functionName || '(anonymous)'}  ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt)
  })
}

const pct = (us: number) => `${((us / totalUs) * 100).toFixed(1).padStart(5)}%`
console.log(
  `${files.length} profile(s), ${(wallUs / 1e6).toFixed(1)} s wall in all, ${(totalUs / 1e6).toFixed(1)} s busy (not idle)`,
)
console.log('\nself time by category (share of busy time):')
for (const [cat, us] of [...byCategory].sort((a, b) => b[1] - a[1]))
  console.log(`  ${pct(us)}  ${(us / 1e6).toFixed(1).padStart(6)} s  ${cat}`)
console.log(
  `\ntop ${values.top} functions by self time${values.category !== undefined ? ` in ${values.category}*` : ''}:`,
)
for (const [fn, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top)))
  console.log(`  ${pct(us)}  ${fn}`)

/**
 * CPU cost of one push per codec, sender and receiver, on the default model: the sender's
 * encode (for delta frames also the reference update once the push succeeded) and the
 * receiver's decode of the whole frame (for delta frames also applying it to its reference),
 * as the exchange does them, without sockets. Printed as ms per push and as a ratio to raw-f32
 * measured in the same run.
 *
 *   npm run bench:push-cost -- [--codecs LIST] [--pushes 40] [--rounds 5] [--chunk 65536]
 *
 * Between pushes the model drifts by a small random step (as training moves it), outside the
 * timed part. Codecs take turns within each round so they see the same load; the figure is the
 * median over rounds of each round's mean.
 */
import '../../src/polyfill.ts'
import { encodeModel, joinFrame, layoutOf } from '../../src/gossip/wire/codec.ts'
import { parseCodecSpec } from '../../src/gossip/wire/codecs/index.ts'
import { DeltaReceiver, DeltaSender, splitDeltaSpec } from '../../src/gossip/wire/delta.ts'
import { FrameDecoder } from '../../src/gossip/wire/frame-decoder.ts'
import type { ModelState } from '../../src/model/types.ts'
import { DEFAULT_ARCH_KIND, defaultArch, initialState } from '../../src/model/zoo.ts'
import { createRng } from '../../src/util/rng.ts'
import { benchFlags, parseBenchArgs } from './flags.ts'

const flags = benchFlags('bench:push-cost')
const values = parseBenchArgs('bench:push-cost', import.meta.url, {
  codecs: { type: 'string', default: 'raw-f32,int4,partial:0.25+int4,delta+partial:0.25+int2' },
  pushes: { type: 'string' },
  rounds: { type: 'string' },
  chunk: { type: 'string' },
})
const specs = flags.list(values.codecs!)
if (!specs.includes('raw-f32')) specs.unshift('raw-f32')
const pushes = flags.int('pushes', values.pushes, 40)
const rounds = flags.int('rounds', values.rounds, 5)
const chunk = flags.int('chunk', values.chunk, 65536)
const TASK = 'mnist'

interface Case {
  spec: string
  push(state: ModelState): { sendMs: number; receiveMs: number; bytes: number }
}

/** The spec split into its delta prefix and inner codec; a bad spec is a usage error. */
function checked(spec: string): { delta: boolean; inner: string } {
  try {
    const split = splitDeltaSpec(spec)
    parseCodecSpec(split.inner)
    return split
  } catch (err) {
    return flags.usage(`--codecs: ${(err as Error).message}`)
  }
}

function makeCase(spec: string): Case {
  const delta = checked(spec)
  const sender = delta.delta ? new DeltaSender(delta.inner) : undefined
  const receiver = new DeltaReceiver()
  const encoder = delta.delta ? undefined : parseCodecSpec(spec)
  return {
    spec,
    push(state) {
      const meta = { task: TASK }
      const t0 = performance.now()
      const d = sender?.encode('to', state, meta)
      const encoded = d?.encoded ?? encodeModel(state, { ...meta, codec: encoder })
      const frame = joinFrame(encoded)
      const t1 = performance.now()
      const decoder = new FrameDecoder({ task: TASK, arch: state.arch, layout: layoutOf(state) })
      for (let off = 0; off < frame.byteLength; off += chunk) decoder.push(frame.subarray(off, off + chunk))
      decoder.end()
      const got = decoder.result()
      if (got.meta.base !== undefined) receiver.apply('from', got.meta.base, got.state)
      const t2 = performance.now()
      d?.commit()
      const t3 = performance.now()
      return { sendMs: t1 - t0 + (t3 - t2), receiveMs: t2 - t1, bytes: frame.byteLength }
    },
  }
}

const cases = specs.map(makeCase)
const arch = defaultArch(DEFAULT_ARCH_KIND)
const states = cases.map(() => initialState(arch, 1))
const rng = createRng(7)
/** A training-sized step: every value moves by about 1e-3. */
function drift(s: ModelState): void {
  for (const t of s.tensors) for (let k = 0; k < t.values.length; k++) t.values[k] += 1e-3 * rng.normal()
}

const perRound = cases.map(() => ({ send: [] as number[], receive: [] as number[], bytes: 0 }))
for (let r = 0; r < rounds + 1; r++) {
  cases.forEach((c, i) => {
    let send = 0
    let receive = 0
    let bytes = 0
    for (let p = 0; p < pushes; p++) {
      drift(states[i]!)
      const m = c.push(states[i]!)
      send += m.sendMs
      receive += m.receiveMs
      bytes += m.bytes
    }
    // Round 0 warms up the JIT.
    if (r === 0) return
    perRound[i]!.send.push(send / pushes)
    perRound[i]!.receive.push(receive / pushes)
    perRound[i]!.bytes = bytes / pushes
  })
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const rows = cases.map((c, i) => ({
  spec: c.spec,
  send: median(perRound[i]!.send),
  receive: median(perRound[i]!.receive),
  bytes: perRound[i]!.bytes,
}))
const base = rows.find((r) => r.spec === 'raw-f32')!
console.log(`node ${process.version}, ${pushes} pushes x ${rounds} rounds, model ${arch.kind}`)
console.log('| codec | frame B | send ms | receive ms | total ms | total vs raw-f32 |')
console.log('|---|---|---|---|---|---|')
for (const r of rows) {
  const total = r.send + r.receive
  console.log(
    `| ${r.spec} | ${Math.round(r.bytes)} | ${r.send.toFixed(2)} | ${r.receive.toFixed(2)} | ${total.toFixed(2)} | ${(total / (base.send + base.receive)).toFixed(2)}x |`,
  )
}

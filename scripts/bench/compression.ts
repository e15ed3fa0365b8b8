/**
 * Evidence for issue 8: accuracy against the bytes each peer sent, per codec, on bench:merge's
 * simulation (16 peers, MLP, dirichlet:0.5, independent inits, the default merge) with every
 * push encoded and decoded by the daemon's codecs.
 *
 *   npm run bench:compression -- [--quick] [--peers 16] [--cycles 50] [--steps 20] [--seed 1]
 *       [--merge MODE] [--codecs raw-f32,f16,int8,int4,partial:0.25+int4]
 *       [--budget-codecs int4,partial:0.25+int4,topk:0.025+int4] [--budget-ratio 20]
 *       [--compare partial:0.25+int4,topk:0.025+int4] [--no-fedavg] [--eval-size 2000]
 *       [--eval-every 2] [--json FILE] [--svg FILE] [--backend wasm]
 *
 * Three sets of runs:
 * 1. --codecs, fanout 1: every codec pushes once per cycle (K local steps), so cheaper codecs send
 *    fewer bytes for the same pushes. The first codec (raw-f32) sets the target: its mean accuracy
 *    over the last 5 evaluations. For each codec: bytes per peer to first reach the target, the
 *    ratio to raw-f32's, and the final accuracy after the same steps.
 * 2. --budget-codecs under one upload budget: raw-f32's bytes per step divided by --budget-ratio,
 *    the same for every codec; a peer pushes (up to the learner's per-round cap) while its budget
 *    is not in debt, so a cheaper codec pushes more often.
 * 3. --compare: partial units against top-k under that budget (the same bytes), each with the
 *    default merge and with alignment first, from independent and from shared inits (top-k only
 *    without: alignment leaves a top-k input in place, it carries no whole unit to match).
 * FedAvg (a server averaging all peers every cycle) costs 2 raw-f32 transfers per peer per cycle.
 *
 * A codec in any list may be `delta+SPEC` (the daemon's delta frames: a reference per sender and
 * destination on both ends) and may end in options after `@`, joined by `;`: `partners=N`, every
 * peer then pushes only to N fixed partners (the union of N/2 random cycles, the simulation's
 * stand-in for `--partners`); `quiet=SHARE|off`, partial codecs leave out the first layer's
 * weights of inputs non-zero in at most SHARE of a peer's samples (the daemon's
 * `--quiet-inputs`, default 0.001), e.g.
 * `--budget-codecs 'delta+partial:0.25+int2@partners=4,delta+partial:0.25+int2@partners=4;quiet=off'`.
 */
import '../../src/polyfill.ts'
import { writeFileSync } from 'node:fs'
import { loadMnist, testSubset } from '../../src/data/mnist.ts'
import { partition } from '../../src/data/partition.ts'
import { selectSamples } from '../../src/data/samples.ts'
import { encodeFrame } from '../../src/gossip/wire/codec.ts'
import { parseCodecSpec } from '../../src/gossip/wire/codecs/index.ts'
import { splitDeltaSpec } from '../../src/gossip/wire/delta.ts'
import { DEFAULT_MERGE_MODE, isMergeMode, MERGE_PIPELINES, type MergeMode } from '../../src/merge/registry.ts'
import { initialState } from '../../src/model/arch.ts'
import { initBackend } from '../../src/model/backend.ts'
import { DEFAULT_LEARNING_RATE, parseArch } from '../../src/model/zoo.ts'
import {
  type BytesPoint,
  bytesToReach,
  type CodecRow,
  type CodecRun,
  codecSpecOf,
  rowOptions,
  runCodec,
  trailingMean,
} from './compression/sim.ts'
import { type BenchFlags, benchFlags, parseBenchArgs } from './flags.ts'
import { type Row, runFedAvg, type SimConfig, type SimData } from './merge/sim.ts'
import { type LineChartSpec, renderLineSvgs } from './plot-svg.ts'

const args = parseBenchArgs('bench:compression', import.meta.url, {
  quick: { type: 'boolean', default: false },
  arch: { type: 'string', default: 'mlp' },
  peers: { type: 'string' },
  cycles: { type: 'string' },
  steps: { type: 'string' },
  partition: { type: 'string', default: 'dirichlet:0.5' },
  seed: { type: 'string', default: '1' },
  merge: { type: 'string', default: DEFAULT_MERGE_MODE },
  codecs: { type: 'string', default: 'raw-f32,f16,int8,int4,partial:0.25+int4' },
  'budget-codecs': { type: 'string', default: 'int4,partial:0.25+int4,topk:0.025+int4' },
  'budget-ratio': { type: 'string', default: '20' },
  compare: { type: 'string', default: 'partial:0.25+int4,topk:0.025+int4' },
  'no-fedavg': { type: 'boolean', default: false },
  'eval-size': { type: 'string' },
  'eval-every': { type: 'string' },
  json: { type: 'string' },
  svg: { type: 'string' },
  backend: { type: 'string', default: 'wasm' },
})

const flags = benchFlags('bench:compression')
// Annotated so that a call to `usage` narrows like a `never` function declaration.
const usage: BenchFlags['usage'] = flags.usage
const int = flags.int
const list = flags.list

function codecs(name: string, text: string): string[] {
  const out = list(text)
  for (const c of out) {
    try {
      parseCodecSpec(splitDeltaSpec(codecSpecOf(c)).inner)
      rowOptions(c)
    } catch (err) {
      usage(`--${name}: ${(err as Error).message}`)
    }
  }
  return out
}

const quick = args.quick
const arch = parseArch(args.arch!)
const peers = int('peers', args.peers, quick ? 4 : 16, 2)
const mode = args.merge!
if (!isMergeMode(mode)) usage(`unknown --merge ${mode}`)
// The same pipeline with alignment first, for the partial vs top-k question.
const alignMode = (
  Object.hasOwn(MERGE_PIPELINES, `align+${mode}`)
    ? `align+${mode}`
    : `align,${(MERGE_PIPELINES as Record<string, readonly string[]>)[mode]?.join(',') ?? mode}`
) as MergeMode
const mainCodecs = codecs('codecs', args.codecs!)
const budgetCodecs = codecs('budget-codecs', args['budget-codecs']!)
const compareCodecs = codecs('compare', args.compare!)
const ratio = Number(args['budget-ratio'])
if (!(ratio > 0)) usage('--budget-ratio must be > 0')

const cfg: SimConfig = {
  arch,
  peers,
  cycles: int('cycles', args.cycles, quick ? 8 : 50),
  steps: int('steps', args.steps, quick ? 10 : 20),
  fanout: 1,
  batchSize: 32,
  learningRate: DEFAULT_LEARNING_RATE,
  optimizer: 'adam',
  lrDecay: 1,
  resetOptimizer: false,
  combine: 'joint',
  varcorr: {},
  evalEvery: int('eval-every', args['eval-every'], 2),
  seed: int('seed', args.seed, 1, 0),
  variant: '',
}
const evalSize = int('eval-size', args['eval-size'], quick ? 500 : 2000)

const backend = await initBackend({ prefer: args.backend as 'wasm' | 'cpu' | 'node' })
const t0 = performance.now()
const train = loadMnist({ split: 'train' })
const shareIdx = partition(train.labels, { spec: args.partition!, peers, seed: cfg.seed })
const data: SimData = {
  shares: shareIdx.map((idx) => selectSamples(train, idx)),
  union: selectSamples(train, []),
  evalSet: testSubset(evalSize),
}
// raw-f32's frame for this architecture: what the budget and FedAvg are measured in.
const rawFrame = encodeFrame(initialState(arch, 1), { task: 'bench' }).byteLength
const budgetPerStep = (rawFrame * cfg.fanout) / cfg.steps / ratio
const settings = [
  `arch ${args.arch}`,
  `${peers} peers`,
  args.partition,
  `${cfg.cycles} cycles x K=${cfg.steps} steps`,
  `merge ${mode}`,
  `raw-f32 frame ${rawFrame} B`,
  `budget ${budgetPerStep.toFixed(0)} B/step (raw-f32 fanout 1 / ${ratio})`,
  `eval ${evalSize} test images every ${cfg.evalEvery} cycles`,
  `seed ${cfg.seed}`,
].join(', ')
console.log(`bench:compression: ${settings}; backend ${backend.name}, node ${process.version}`)

const log = (msg: string): void => console.log(msg)
const rows: CodecRow[] = []
const run = async (r: CodecRun): Promise<CodecRow> => {
  const row = await runCodec(cfg, data, r, log)
  rows.push(row)
  console.log(
    `${r.group} ${r.codec} ${r.mode}/${r.init}: final ${(row.finalAccuracy * 100).toFixed(2)}%, ${(row.bytesPerPeer / 1e6).toFixed(2)} MB/peer, ${row.pushesPerPeer.toFixed(0)} pushes, ${row.wallSeconds.toFixed(0)} s`,
  )
  return row
}

for (const codec of mainCodecs) {
  await run({ codec, mode, init: 'independent', group: 'fanout 1', ...rowOptions(codec) })
}
for (const codec of budgetCodecs) {
  await run({ codec, mode, init: 'independent', budgetPerStep, group: 'budget', ...rowOptions(codec) })
}
const compareModes: MergeMode[] = [mode as MergeMode, alignMode]
for (const codec of compareCodecs) {
  for (const m of compareModes) {
    if (m !== mode && parseCodecSpec(splitDeltaSpec(codecSpecOf(codec)).inner).selection?.name === 'topk')
      continue
    for (const init of ['independent', 'shared'] as const) {
      if (m === mode && init === 'independent' && budgetCodecs.includes(codec)) continue
      await run({ codec, mode: m, init, budgetPerStep, group: 'compare', ...rowOptions(codec) })
    }
  }
}
let fedavg: Row | undefined
if (!args['no-fedavg']) {
  console.log('fedavg ...')
  fedavg = await runFedAvg(cfg, data, log)
}

// Tables.
const pct = (x: number): string => (x * 100).toFixed(2)
const mb = (x: number | undefined): string => (x === undefined ? '-' : (x / 1e6).toFixed(3))
const reference = rows.find((r) => r.group === 'fanout 1' && r.codec === 'raw-f32') ?? rows[0]!
const target = reference.tailAccuracy
const refBytes = bytesToReach(reference, target)!
/** Evaluations in the trailing mean of the smoothed reading (the "3-eval" column). */
const SMOOTH = 3
const smoothReach = (r: { curve: readonly BytesPoint[] }): number | undefined =>
  bytesToReach({ curve: trailingMean(r.curve, SMOOTH) }, target)
const refSmooth = smoothReach(reference)
const fedavgCurve = fedavg?.curve.map((p) => ({ ...p, bytes: (p.step / cfg.steps) * 2 * rawFrame }))
const fedavgBytes = fedavgCurve === undefined ? undefined : bytesToReach({ curve: fedavgCurve }, target)

function ratioOf(ref: number | undefined, reach: number | undefined): string {
  return ref === undefined || reach === undefined ? '-' : (ref / reach).toFixed(1)
}

function table(head: string[], lines: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [fmt(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n')
}

const mainHead = [
  'codec',
  'pushes',
  'frame B',
  'carried %',
  'MB/peer',
  'final %',
  'last-5 %',
  'min %',
  `MB to ${pct(target)}`,
  'x fewer bytes',
  `x fewer (${SMOOTH}-eval mean)`,
  'wall s',
]
const mainLine = (r: CodecRow): string[] => {
  const reach = bytesToReach(r, target)
  return [
    r.codec,
    r.pushesPerPeer.toFixed(0),
    r.frameBytes.toFixed(0),
    (r.carried * 100).toFixed(1),
    mb(r.bytesPerPeer),
    pct(r.finalAccuracy),
    pct(r.tailAccuracy),
    pct(r.minAccuracy),
    mb(reach),
    reach === undefined ? '-' : (refBytes / reach).toFixed(1),
    ratioOf(refSmooth, smoothReach(r)),
    r.wallSeconds.toFixed(0),
  ]
}
console.log(`\n## bench:compression (${settings})\n`)
console.log(
  `target: raw-f32 (fanout 1) last-5 mean accuracy ${pct(target)} %, first reached at ${mb(refBytes)} MB/peer\n`,
)
console.log('fanout 1 (one push per cycle):\n')
const fanoutLines = rows.filter((r) => r.group === 'fanout 1').map(mainLine)
if (fedavg !== undefined) {
  fanoutLines.push([
    'FedAvg (server, raw-f32)',
    String(cfg.cycles * 2),
    String(rawFrame),
    '100.0',
    mb(cfg.cycles * 2 * rawFrame),
    pct(fedavg.finalAccuracy),
    pct(fedavg.tailAccuracy),
    pct(fedavg.minAccuracy),
    mb(fedavgBytes),
    fedavgBytes === undefined ? '-' : (refBytes / fedavgBytes).toFixed(1),
    fedavgCurve === undefined ? '-' : ratioOf(refSmooth, smoothReach({ curve: fedavgCurve })),
    fedavg.wallSeconds.toFixed(0),
  ])
}
console.log(table(mainHead, fanoutLines))
console.log(
  `\nsame upload budget, ${budgetPerStep.toFixed(0)} B per step and peer (raw-f32 fanout 1 / ${ratio}):\n`,
)
console.log(table(mainHead, rows.filter((r) => r.group === 'budget').map(mainLine)))
const compared = rows.filter((r) => compareCodecs.includes(r.codec) && r.budgetPerStep !== undefined)
if (compared.length > 0) {
  console.log(`\npartial units vs top-k at the same bytes (the budget above):\n`)
  console.log(
    table(
      ['codec', 'merge', 'init', 'pushes', 'MB/peer', 'final %', 'last-5 %', 'min %'],
      compared.map((r) => [
        r.codec,
        r.mode,
        r.init,
        r.pushesPerPeer.toFixed(0),
        mb(r.bytesPerPeer),
        pct(r.finalAccuracy),
        pct(r.tailAccuracy),
        pct(r.minAccuracy),
      ]),
    ),
  )
}

// The goal: >= 20x fewer bytes to raw-f32's accuracy, final accuracy within 0.5 points (or above).
const refFinal = reference.finalAccuracy
const candidates = rows
  .filter((r) => r.mode === mode && r.init === 'independent' && r !== reference)
  .map((r) => ({ r, reach: bytesToReach(r, target) }))
  .filter((c) => c.reach !== undefined)
  .map((c) => ({ ...c, x: refBytes / c.reach!, gap: (refFinal - c.r.finalAccuracy) * 100 }))
  .sort((a, b) => b.x - a.x)
const met = candidates.filter((c) => c.x >= 20 && c.gap <= 0.5)
const best = met[0] ?? candidates.find((c) => c.gap <= 0.5) ?? candidates[0]
console.log(
  `\ngoal (>= 20x fewer bytes to ${pct(target)} % and final within 0.5 points of raw-f32's ${pct(refFinal)} %): ${
    best === undefined
      ? 'no codec reached the target'
      : `${met.length > 0 ? 'met' : 'not met'}; best ${best.r.codec}${best.r.budgetPerStep === undefined ? '' : ' (budget)'}: ${best.x.toFixed(1)}x, final ${pct(best.r.finalAccuracy)} % (${best.gap > 0 ? '-' : '+'}${Math.abs(best.gap).toFixed(2)} points)`
  }`,
)
const smoothBest = candidates
  .map((c) => ({
    ...c,
    xs: refSmooth === undefined ? undefined : refSmooth / (smoothReach(c.r) ?? Number.POSITIVE_INFINITY),
  }))
  .sort((a, b) => (b.xs ?? 0) - (a.xs ?? 0))[0]
if (smoothBest?.xs !== undefined) {
  console.log(
    `on the ${SMOOTH}-evaluation trailing mean (both curves): best ${smoothBest.r.codec} ${smoothBest.xs.toFixed(1)}x`,
  )
}
if (fedavgBytes !== undefined) {
  console.log(
    `FedAvg reaches ${pct(target)} % at ${mb(fedavgBytes)} MB per client (2 transfers per client per round)`,
  )
}
console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s`)

const round = (_key: string, v: unknown): unknown => (typeof v === 'number' ? Number(v.toFixed(5)) : v)
if (args.json !== undefined) {
  const out = {
    settings,
    rawFrameBytes: rawFrame,
    budgetPerStep,
    target,
    rows,
    fedavg: fedavg === undefined ? undefined : { ...fedavg, curve: fedavgCurve },
  }
  writeFileSync(args.json, `${JSON.stringify(out, round)}\n`)
}
if (args.svg !== undefined) {
  const lows = rows.map((r) => r.curve[Math.min(1, r.curve.length - 1)]!.accuracy)
  const yMin = Math.max(0, Math.floor(Math.min(...lows) * 20) / 20)
  const series = (rs: CodecRow[]) =>
    rs.map((r) => ({
      name: `${r.codec}${r.budgetPerStep === undefined ? '' : ' (budget)'} ${r.mode === mode ? '' : `${r.mode} `}${r.init === 'shared' ? 'shared ' : ''}${pct(r.finalAccuracy)}`,
      points: r.curve.map((p) => [Math.log10(p.bytes / 1e6), Math.max(p.accuracy, yMin)] as [number, number]),
      dashed: r.budgetPerStep !== undefined,
    }))
  const chart: LineChartSpec = {
    title: `Accuracy vs bytes sent per peer: MNIST ${args.partition}, ${peers} peers, ${args.arch}, K=${cfg.steps}, merge ${mode}`,
    width: 900,
    height: 520,
    x: { label: 'log10 MB sent per peer' },
    y: { label: 'mean test accuracy %', domain: [yMin, 1], percent: true },
    series: [
      ...series(rows.filter((r) => r.mode === mode && r.init === 'independent')),
      ...(fedavgCurve === undefined
        ? []
        : [
            {
              name: `FedAvg ${pct(fedavg!.finalAccuracy)}`,
              points: fedavgCurve.map((p) => [Math.log10(p.bytes / 1e6), p.accuracy] as [number, number]),
              dashed: true,
            },
          ]),
    ],
  }
  const [svg] = await renderLineSvgs([chart])
  writeFileSync(args.svg, svg!)
}

/**
 * Evidence for issue 3: which merge mode works best, with independent or shared
 * initialisations, next to local-only training, FedAvg and centralized training.
 * Peers are simulated in one process with the daemon's training and merge code.
 *
 *   npm run bench:merge -- [--quick] [--arch mlp|cnn|mlp:256] [--peers 16] [--cycles 50]
 *       [--steps 20] [--fanout 1] [--partition dirichlet:0.5] [--seed 1] [--lr 0.002]
 *       [--optimizer adam|sgd|momentum] [--lr-decay 1] [--reset-optimizer]
 *       [--combine joint|sequential] [--varcorr-biases] [--varcorr-target inputs|local|<blend>]
 *       [--modes plain,align,varcorr,align+varcorr,robust,align+robust] [--inits independent,shared]
 *       [--baselines local-only,fedavg,centralized-same-time,centralized-same-total|none]
 *       [--eval-size 2000] [--eval-every 2] [--no-cost] [--cost-archs mlp:256,cnn]
 *       [--json FILE] [--svg FILE] [--cost-json FILE] [--variant LABEL] [--backend wasm]
 *
 * Each cycle every peer trains K (--steps) local steps (batch 32), pushes its model to
 * --fanout peers sampled uniformly, and merges what it received (in one weighted mean, or
 * one model at a time with --combine sequential) before the next cycle. Accuracy is the
 * mean over peers on the first --eval-size MNIST test images, every --eval-every cycles.
 * Everything is seeded by --seed: the same command prints the same accuracies. Any named merge
 * pipeline can be compared (--modes varcorr,robust); each gossip row also counts the received
 * models its merges clipped or rejected (the robust pipelines' distance test).
 */
import '../../src/polyfill.ts'
import { writeFileSync } from 'node:fs'
import { loadMnist, testSubset } from '../../src/data/mnist.ts'
import { partition } from '../../src/data/partition.ts'
import { selectSamples } from '../../src/data/samples.ts'
import { isMergeMode, type MergeMode } from '../../src/merge/registry.ts'
import type { VarianceTarget } from '../../src/merge/varcorr.ts'
import { initBackend } from '../../src/model/backend.ts'
import { DEFAULT_LEARNING_RATE, parseArch } from '../../src/model/zoo.ts'
import { type BenchFlags, benchFlags, parseBenchArgs } from './flags.ts'
import { formatCost, type MergeCost, measureMergeCost } from './merge/cost.ts'
import { formatTable, renderSvg, stepsToReachInterpolated } from './merge/report.ts'
import {
  type Combine,
  type OptimizerChoice,
  type Row,
  runCentralized,
  runFedAvg,
  runGossip,
  type SimConfig,
  type SimData,
} from './merge/sim.ts'

const args = parseBenchArgs('bench:merge', import.meta.url, {
  quick: { type: 'boolean', default: false },
  arch: { type: 'string', default: 'mlp' },
  peers: { type: 'string' },
  cycles: { type: 'string' },
  steps: { type: 'string' },
  fanout: { type: 'string', default: '1' },
  partition: { type: 'string', default: 'dirichlet:0.5' },
  seed: { type: 'string', default: '1' },
  lr: { type: 'string', default: String(DEFAULT_LEARNING_RATE) },
  optimizer: { type: 'string', default: 'adam' },
  'lr-decay': { type: 'string', default: '1' },
  'reset-optimizer': { type: 'boolean', default: false },
  combine: { type: 'string', default: 'joint' },
  'varcorr-biases': { type: 'boolean', default: false },
  'varcorr-target': { type: 'string', default: 'inputs' },
  modes: { type: 'string', default: 'plain,align,varcorr,align+varcorr' },
  inits: { type: 'string', default: 'independent,shared' },
  baselines: { type: 'string', default: 'local-only,fedavg,centralized-same-time,centralized-same-total' },
  'eval-size': { type: 'string' },
  'eval-every': { type: 'string' },
  'no-cost': { type: 'boolean', default: false },
  'cost-archs': { type: 'string', default: 'mlp:256,cnn' },
  json: { type: 'string' },
  svg: { type: 'string' },
  'cost-json': { type: 'string' },
  variant: { type: 'string', default: '' },
  backend: { type: 'string', default: 'wasm' },
})

const flags = benchFlags('bench:merge')
// Annotated so that a call to `usage` narrows like a `never` function declaration.
const usage: BenchFlags['usage'] = flags.usage
const int = flags.int
const num = flags.num
const list = flags.list

const quick = args.quick
const arch = parseArch(args.arch!)
const peers = int('peers', args.peers, quick ? 4 : 16, 2)
const optimizer = args.optimizer as OptimizerChoice
if (!['adam', 'sgd', 'momentum'].includes(optimizer)) usage(`unknown --optimizer ${optimizer}`)
const combine = args.combine as Combine
if (combine !== 'joint' && combine !== 'sequential') usage(`unknown --combine ${combine}`)
const vt = args['varcorr-target']!
const target: VarianceTarget =
  vt === 'inputs' || vt === 'local' ? vt : { blend: num('varcorr-target', vt, 0, 1) }
const modes = list(args.modes!)
for (const m of modes) if (!isMergeMode(m)) usage(`unknown merge mode ${m}`)
const inits = list(args.inits!)
for (const i of inits) if (i !== 'independent' && i !== 'shared') usage(`unknown init ${i}`)
const baselines = list(args.baselines!)
const BASELINES = ['local-only', 'fedavg', 'centralized-same-time', 'centralized-same-total']
for (const b of baselines) if (!BASELINES.includes(b)) usage(`unknown baseline ${b}`)

const cfg: SimConfig = {
  arch,
  peers,
  cycles: int('cycles', args.cycles, quick ? 8 : 50),
  steps: int('steps', args.steps, quick ? 10 : 20),
  fanout: int('fanout', args.fanout, 1),
  batchSize: 32,
  learningRate: num('lr', args.lr!, 1e-9),
  optimizer,
  lrDecay: num('lr-decay', args['lr-decay']!, 0.5, 1),
  resetOptimizer: args['reset-optimizer']!,
  combine,
  varcorr: { biases: args['varcorr-biases'], target },
  evalEvery: int('eval-every', args['eval-every'], 2),
  seed: int('seed', args.seed, 1, 0),
  variant: args.variant!,
}
const evalSize = int('eval-size', args['eval-size'], quick ? 500 : 2000)

const backend = await initBackend({ prefer: args.backend as 'wasm' | 'cpu' | 'node' })
const t0 = performance.now()
const train = loadMnist({ split: 'train' })
const shareIdx = partition(train.labels, { spec: args.partition!, peers, seed: cfg.seed })
const data: SimData = {
  shares: shareIdx.map((idx) => selectSamples(train, idx)),
  union: selectSamples(
    train,
    shareIdx.flat().sort((a, b) => a - b),
  ),
  evalSet: testSubset(evalSize),
}
const settings = [
  `arch ${args.arch}`,
  `${peers} peers`,
  args.partition,
  `${cfg.cycles} cycles x K=${cfg.steps} steps (batch ${cfg.batchSize})`,
  `fanout ${cfg.fanout}`,
  `${optimizer} lr ${cfg.learningRate}${cfg.lrDecay === 1 ? '' : ` decay ${cfg.lrDecay}/cycle`}`,
  cfg.resetOptimizer ? 'optimizer reset after merge' : '',
  `combine ${combine}`,
  `varcorr ${typeof target === 'string' ? target : `blend ${target.blend}`}${cfg.varcorr.biases ? ' +biases' : ''}`,
  `eval ${evalSize} test images every ${cfg.evalEvery} cycles`,
  `seed ${cfg.seed}`,
]
  .filter((s) => s !== '')
  .join(', ')
console.log(`bench:merge: ${settings}; backend ${backend.name}, node ${process.version}`)
console.log(`share sizes: ${data.shares.map((s) => s.count).join(' ')}`)

const log = (msg: string): void => console.log(msg)
const rows: Row[] = []
const run = async (name: string, fn: () => Promise<Row>): Promise<void> => {
  console.log(`${name} ...`)
  const row = await fn()
  rows.push(row)
  console.log(
    `${name}: final ${(row.finalAccuracy * 100).toFixed(2)}% [${(row.minAccuracy * 100).toFixed(2)}, ${(row.maxAccuracy * 100).toFixed(2)}] in ${row.wallSeconds.toFixed(0)} s` +
      (row.inputs === undefined
        ? ''
        : `; received models merged ${row.inputs.merged}, clipped ${row.inputs.clipped}, rejected ${row.inputs.rejected}`),
  )
}

for (const mode of modes as MergeMode[]) {
  for (const init of inits as Array<'independent' | 'shared'>) {
    await run(`${mode}/${init}`, () => runGossip(cfg, data, mode, init, log))
  }
}
if (baselines.includes('local-only'))
  await run('local-only', () => runGossip(cfg, data, 'local-only', 'independent', log))
if (baselines.includes('fedavg')) await run('fedavg', () => runFedAvg(cfg, data, log))
if (baselines.includes('centralized-same-time'))
  await run('centralized-same-time', () => runCentralized(cfg, data, 'same-time', log))
if (baselines.includes('centralized-same-total'))
  await run('centralized-same-total', () => runCentralized(cfg, data, 'same-total', log))

const costs: MergeCost[] = []
if (!args['no-cost']) {
  const iid = partition(train.labels, { spec: 'iid', peers: 2, seed: 1 }).map((idx) =>
    selectSamples(train, idx),
  )
  const opts = quick ? { pretrain: 20, reps: 3, trainReps: 5 } : { pretrain: 100, reps: 15, trainReps: 20 }
  for (const a of list(args['cost-archs']!)) {
    console.log(`merge cost ${a} ...`)
    costs.push(await measureMergeCost(a, [iid[0]!, iid[1]!], opts))
  }
}

console.log(`\n## bench:merge (${settings})\n`)
console.log(formatTable(rows))
console.log(
  '\nsteps to thresholds: first eval point (every %d steps) whose mean accuracy reaches it; last-5 = mean of the last 5 eval points',
  cfg.evalEvery * cfg.steps,
)

// The goals of issue 3, answered from the rows at hand. Rows are compared on the mean of
// their last 5 eval points: a single eval point of 16 drifting peers moves by a point.
const pct = (x: number): string => `${(x * 100).toFixed(2)}%`
const find = (mode: string, init: string): Row | undefined =>
  rows.find((r) => r.mode === mode && r.init === init)
const bestOf = (rs: Row[]): Row => rs.reduce((a, b) => (b.tailAccuracy > a.tailAccuracy ? b : a))
const gossipIndep = rows.filter((r) => isMergeMode(r.mode) && r.init === 'independent')
if (gossipIndep.length > 0) {
  const best = bestOf(gossipIndep)
  console.log(`\nbest mode with independent init (last-5 mean): ${best.mode} (${pct(best.tailAccuracy)})`)
  const plainShared = find('plain', 'shared')
  if (plainShared !== undefined) {
    const gap = (plainShared.tailAccuracy - best.tailAccuracy) * 100
    console.log(
      `goal 1 (within 0.5 points of plain/shared ${pct(plainShared.tailAccuracy)}): gap ${gap.toFixed(2)} points -> ${gap <= 0.5 ? 'met' : 'not met'}`,
    )
  }
  const plainIndep = find('plain', 'independent')
  if (plainIndep !== undefined) {
    const at = stepsToReachInterpolated(best, plainIndep.tailAccuracy)
    const budget = plainIndep.stepsPerPeer
    console.log(
      `goal 2 (${best.mode} reaches plain/independent's end accuracy ${pct(plainIndep.tailAccuracy)} in <= ${budget / 2} steps): ${at === undefined ? 'never' : `${at.toFixed(0)} steps`} -> ${at !== undefined && at <= budget / 2 ? 'met' : 'not met'}`,
    )
  }
  const fedavg = find('fedavg', 'shared')
  if (fedavg !== undefined) {
    const top = bestOf(rows.filter((r) => isMergeMode(r.mode)))
    const gap = (fedavg.tailAccuracy - top.tailAccuracy) * 100
    console.log(
      `goal 3 (best gossip ${top.mode}/${top.init} ${pct(top.tailAccuracy)} vs FedAvg ${pct(fedavg.tailAccuracy)}): gap ${gap.toFixed(2)} points (aim <= 1)`,
    )
  }
}
if (costs.length > 0) {
  console.log('\nmerge cost (median; steps = merge time / one training step, batch 32):\n')
  console.log(formatCost(costs))
}
console.log(`\ntotal ${((performance.now() - t0) / 1000).toFixed(0)} s`)

// One row per line, numbers to 5 decimals: small enough to commit next to the docs.
const round = (_key: string, v: unknown): unknown => (typeof v === 'number' ? Number(v.toFixed(5)) : v)
if (args.json !== undefined) {
  writeFileSync(args.json, `[\n${rows.map((r) => JSON.stringify(r, round)).join(',\n')}\n]\n`)
}
if (args.svg !== undefined) {
  writeFileSync(
    args.svg,
    await renderSvg(
      rows,
      `MNIST ${args.partition}, ${peers} peers, ${args.arch}, K=${cfg.steps}, fanout ${cfg.fanout}`,
    ),
  )
}
if (args['cost-json'] !== undefined) writeFileSync(args['cost-json'], `${JSON.stringify(costs, null, 1)}\n`)

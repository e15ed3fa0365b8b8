/**
 * Cost of one merge of a received model (align + age-weighted average + variance
 * correction), per merge mode, next to the cost of one local training step of the
 * same model as the node trains it (LocalTrainer, batch 32).
 *
 *   npx tsx scripts/bench/merge-cost.ts [--backend wasm|cpu|node] [--arch mlp:256,cnn]
 *       [--pretrain 100] [--reps 20] [--train-reps 20] [--gc]
 *
 * The two models start from different seeds and are each trained `--pretrain` steps
 * on their own iid share, so alignment sees realistic (not random) weights. Each of
 * `--reps` rounds (after 2 warm-up rounds) times `--train-reps` training steps, then
 * one run of each case, so both see the same load; medians are reported.
 *
 * `--gc` (with `node --expose-gc --import tsx`) runs a full collection before each timed case,
 * outside its time, as a daemon's small heap does every few seconds between merges: V8 then drops
 * the optimised code of closures made per call, and a merge pays for its loops again.
 */
import '../../src/polyfill.ts'
import { loadMnist } from '../../src/data/mnist.ts'
import { partition } from '../../src/data/partition.ts'
import { selectSamples } from '../../src/data/samples.ts'
import { alignTo } from '../../src/merge/align.ts'
import { ageWeights, mergedAge, weightedAverage } from '../../src/merge/average.ts'
import { createMerger } from '../../src/merge/merger.ts'
import { MERGE_MODES } from '../../src/merge/registry.ts'
import { correctVariance } from '../../src/merge/varcorr.ts'
import { initBackend } from '../../src/model/backend.ts'
import { permutationSpecFor } from '../../src/model/permutation.ts'
import { getState, setState } from '../../src/model/state.ts'
import { LocalTrainer } from '../../src/model/train.ts'
import { buildModel, parseArch } from '../../src/model/zoo.ts'
import { benchFlags, parseBenchArgs } from './flags.ts'

const values = parseBenchArgs('bench:merge-cost', import.meta.url, {
  backend: { type: 'string', default: 'wasm' },
  arch: { type: 'string', default: 'mlp:256,cnn' },
  pretrain: { type: 'string', default: '100' },
  reps: { type: 'string', default: '20' },
  'train-reps': { type: 'string', default: '20' },
  gc: { type: 'boolean', default: false },
})
const collect = values.gc ? (globalThis as { gc?: () => void }).gc : () => {}
if (collect === undefined) benchFlags('bench:merge-cost').usage('--gc needs node --expose-gc')

const backend = await initBackend({ prefer: values.backend as 'wasm' | 'cpu' | 'node' })
const reps = Number(values.reps)
const trainReps = Number(values['train-reps'])
const train = loadMnist({ split: 'train' })
const shares = partition(train.labels, { spec: 'iid', peers: 2, seed: 1 })
console.log(
  `backend ${backend.name}${backend.simd === undefined ? '' : ` simd=${backend.simd}`}, node ${process.version}`,
)

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

for (const text of values.arch!.split(',')) {
  const arch = parseArch(text)
  const models = [buildModel(arch, { seed: 1 }), buildModel(arch, { seed: 2 })]
  const trainers = shares.map(
    (share, i) => new LocalTrainer({ data: selectSamples(train, share), seed: 10 + i }),
  )
  const pretrain = Number(values.pretrain)
  for (let i = 0; i < 2; i++) await trainers[i]!.trainSteps(models[i]!, { steps: pretrain })

  const local = getState(models[0]!, { age: pretrain * 32 })
  const received = getState(models[1]!, { age: pretrain * 32 })
  const spec = permutationSpecFor(arch)
  const states = [local, received]
  const weights = ageWeights(states)
  const averaged = weightedAverage(states, weights, mergedAge(states))
  const aligned = alignTo(local, received, spec)
  const cases: Array<[string, () => unknown]> = [
    [`align (${aligned.passes} passes, ${aligned.solves} assignments)`, () => alignTo(local, received, spec)],
    ['average', () => weightedAverage(states, weights, mergedAge(states))],
    ['varcorr', () => correctVariance(averaged, states, weights)],
    ['getState + setState', () => setState(models[1]!, getState(models[1]!))],
    ...MERGE_MODES.map((mode): [string, () => unknown] => {
      const merge = createMerger({ mode })
      return [`merge ${mode}`, () => merge(local, [received])]
    }),
  ]
  // Training steps and merges take turns, so both see the same load on a shared machine.
  const stepTimes: number[] = []
  const caseTimes = cases.map((): number[] => [])
  for (let r = 0; r < reps + 2; r++) {
    const t0 = performance.now()
    await trainers[0]!.trainSteps(models[0]!, { steps: trainReps })
    if (r >= 2) stepTimes.push((performance.now() - t0) / trainReps)
    cases.forEach(([, fn], i) => {
      collect!()
      const t1 = performance.now()
      fn()
      if (r >= 2) caseTimes[i]!.push(performance.now() - t1)
    })
  }
  const stepMs = median(stepTimes)
  const params = local.tensors.reduce((n, t) => n + t.values.length, 0)
  console.log(`\n${text} (${params} parameters): one training step (batch 32) = ${stepMs.toFixed(2)} ms`)
  cases.forEach(([name], i) => {
    const ms = median(caseTimes[i]!)
    console.log(
      `  ${name.padEnd(40)} ${ms.toFixed(2).padStart(8)} ms  = ${(ms / stepMs).toFixed(2).padStart(6)} steps`,
    )
  })
  for (const m of models) m.dispose()
}

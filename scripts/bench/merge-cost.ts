/**
 * Cost of one merge of a received model (align + age-weighted average + variance
 * correction), per merge mode, next to the cost of one local training step of the
 * same model as the node trains it (LocalTrainer, batch 32).
 *
 *   npx tsx scripts/bench/merge-cost.ts [--backend wasm|cpu|node] [--arch mlp:256,cnn]
 *       [--pretrain 100] [--reps 20] [--train-reps 100]
 *
 * The two models start from different seeds and are each trained `--pretrain` steps
 * on their own iid share, so alignment sees realistic (not random) weights. Times are
 * medians over `--reps` runs after warm-up; the step time is the mean of `--train-reps` steps.
 */
import '../../src/polyfill.ts'
import { parseArgs } from 'node:util'
import { initBackend } from '../../src/model/backend.ts'
import { alignTo } from '../../src/model/merge/align.ts'
import { ageWeights, mergedAge, weightedAverage } from '../../src/model/merge/average.ts'
import { createMerger, MERGE_MODES } from '../../src/model/merge/merger.ts'
import { correctVariance } from '../../src/model/merge/varcorr.ts'
import { loadMnist, selectSamples } from '../../src/model/mnist.ts'
import { partition } from '../../src/model/partition.ts'
import { permutationSpecFor } from '../../src/model/permutation.ts'
import { getState, setState } from '../../src/model/state.ts'
import { LocalTrainer } from '../../src/model/train.ts'
import { buildModel, parseArch } from '../../src/model/zoo.ts'

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    arch: { type: 'string', default: 'mlp:256,cnn' },
    pretrain: { type: 'string', default: '100' },
    reps: { type: 'string', default: '20' },
    'train-reps': { type: 'string', default: '100' },
  },
})

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

function timeMs(fn: () => unknown): number {
  for (let i = 0; i < 3; i++) fn()
  const times: number[] = []
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now()
    fn()
    times.push(performance.now() - t0)
  }
  return median(times)
}

for (const text of values.arch!.split(',')) {
  const arch = parseArch(text)
  const models = [buildModel(arch, { seed: 1 }), buildModel(arch, { seed: 2 })]
  const trainers = shares.map(
    (share, i) => new LocalTrainer({ data: selectSamples(train, share), seed: 10 + i }),
  )
  const pretrain = Number(values.pretrain)
  for (let i = 0; i < 2; i++) await trainers[i]!.trainSteps(models[i]!, { steps: pretrain })

  // One training step as the node runs it (after the pretraining warm-up).
  const t0 = performance.now()
  await trainers[0]!.trainSteps(models[0]!, { steps: trainReps })
  const stepMs = (performance.now() - t0) / trainReps

  const local = getState(models[0]!, { age: (pretrain + trainReps) * 32 })
  const received = getState(models[1]!, { age: pretrain * 32 })
  const spec = permutationSpecFor(arch)
  const params = local.tensors.reduce((n, t) => n + t.values.length, 0)
  console.log(`\n${text} (${params} parameters): one training step (batch 32) = ${stepMs.toFixed(2)} ms`)

  const states = [local, received]
  const weights = ageWeights(states)
  const averaged = weightedAverage(states, weights, mergedAge(states))
  const aligned = alignTo(local, received, spec)
  const parts: Array<[string, number]> = [
    [
      `align (${aligned.passes} passes, ${aligned.solves} assignments)`,
      timeMs(() => alignTo(local, received, spec)),
    ],
    ['average', timeMs(() => weightedAverage(states, weights, mergedAge(states)))],
    ['varcorr', timeMs(() => correctVariance(averaged, states, weights))],
    ['getState + setState', timeMs(() => setState(models[0]!, getState(models[0]!)))],
  ]
  for (const mode of MERGE_MODES) {
    const merge = createMerger({ mode })
    parts.push([`merge ${mode}`, timeMs(() => merge(local, [received]))])
  }
  for (const [name, ms] of parts) {
    console.log(
      `  ${name.padEnd(40)} ${ms.toFixed(2).padStart(8)} ms  = ${(ms / stepMs).toFixed(2).padStart(6)} steps`,
    )
  }
  for (const m of models) m.dispose()
}

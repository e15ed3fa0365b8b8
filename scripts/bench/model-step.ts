/**
 * Measures local training speed (steps/s) per backend and how many steps an
 * isolated model needs to reach a target test accuracy on iid data.
 *
 *   npx tsx scripts/bench/model-step.ts [--backend wasm|cpu|node] [--arch mlp|cnn|mlp:256]
 *       [--steps 300] [--batch 32] [--lr 0.002] [--optimizer adam|sgd] [--target 0.9]
 *       [--max-steps 3000] [--eval-every 50] [--peers 1] [--seed 2]
 *
 * Speed and convergence are separate phases: the speed phase times `--steps` steps after a
 * warm-up, and for an MLP compares the trainer's step (hand-written backward pass, our Adam)
 * with tfjs's autodiff and tfjs's Adam; the convergence phase trains a fresh model on share 0 of an iid split over
 * `--peers` peers and evaluates on the first 2000 test images every `--eval-every` steps.
 */
import '../../src/polyfill.ts'
import { loadMnist, testSubset } from '../../src/data/mnist.ts'
import { partition } from '../../src/data/partition.ts'
import { selectSamples } from '../../src/data/samples.ts'
import { initBackend } from '../../src/model/backend.ts'
import { evaluate } from '../../src/model/evaluate.ts'
import * as tf from '../../src/model/tf.ts'
import { LocalTrainer } from '../../src/model/train.ts'
import { buildModel, DEFAULT_LEARNING_RATE, type OptimizerKind, parseArch } from '../../src/model/zoo.ts'
import { parseBenchArgs } from './flags.ts'

const values = parseBenchArgs('model-step', import.meta.url, {
  backend: { type: 'string', default: 'wasm' },
  arch: { type: 'string', default: 'mlp' },
  steps: { type: 'string', default: '300' },
  batch: { type: 'string', default: '32' },
  lr: { type: 'string', default: String(DEFAULT_LEARNING_RATE) },
  optimizer: { type: 'string', default: 'adam' },
  target: { type: 'string', default: '0.9' },
  'max-steps': { type: 'string', default: '3000' },
  'eval-every': { type: 'string', default: '50' },
  peers: { type: 'string', default: '1' },
  seed: { type: 'string', default: '2' },
  'skip-speed': { type: 'boolean', default: false },
  'skip-converge': { type: 'boolean', default: false },
})

const backend = await initBackend({ prefer: values.backend as 'wasm' | 'cpu' | 'node' })
const arch = parseArch(values.arch!)
const batchSize = Number(values.batch)
const learningRate = Number(values.lr)
const optimizer = values.optimizer as OptimizerKind
const train = loadMnist({ split: 'train' })
console.log(
  `backend ${backend.name}${backend.simd === undefined ? '' : ` simd=${backend.simd}`}, arch ${values.arch}, batch ${batchSize}, ${optimizer} lr ${learningRate}`,
)

if (!values['skip-speed']) {
  const model = buildModel(arch, { seed: 1, learningRate, optimizer })
  const trainer = new LocalTrainer({ data: train, seed: 1 })
  await trainer.trainSteps(model, { steps: 20, batchSize })
  const steps = Number(values.steps)
  const t0 = performance.now()
  const r = await trainer.trainSteps(model, { steps, batchSize })
  const ms = performance.now() - t0
  console.log(
    `speed: ${steps} steps in ${ms.toFixed(0)} ms = ${((steps / ms) * 1000).toFixed(0)} steps/s (${(ms / steps).toFixed(2)} ms/step), loss ${r.loss.toFixed(3)}, tensors ${tf.memory().numTensors}`,
  )
  model.dispose()
  if (arch.kind === 'mlp') await compareBackprop(steps)
}

/**
 * The MLP's step as the trainer takes it (hand-written backward pass, our Adam) against tfjs's
 * autodiff and, with `--optimizer adam`, tfjs's own Adam: models from one seed train on the same
 * batches in alternating blocks, so a machine that slows down or speeds up mid-run weighs on all
 * alike. Prints each rate and its ratio to the last (autodiff, and tfjs's Adam where it applies).
 */
async function compareBackprop(steps: number): Promise<void> {
  const block = 100
  const adam = optimizer === 'adam'
  const specs = [
    { name: `hand-written${adam ? ', Adam (ours)' : ''}`, autodiff: false, tfjsAdam: false },
    ...(adam ? [{ name: "hand-written, tfjs's Adam", autodiff: false, tfjsAdam: true }] : []),
    { name: `autodiff${adam ? ", tfjs's Adam" : ''}`, autodiff: true, tfjsAdam: adam },
  ]
  const ways = specs.map((w) => {
    const model = buildModel(arch, { seed: 1, learningRate, optimizer })
    if (w.tfjsAdam) {
      model.optimizer.dispose()
      model.optimizer = tf.train.adam(learningRate)
    }
    return { ...w, model, trainer: new LocalTrainer({ data: train, seed: 1 }), ms: 0, loss: 0 }
  })
  for (const w of ways) await w.trainer.trainSteps(w.model, { steps: 20, batchSize, autodiff: w.autodiff })
  const blocks = Math.max(2, Math.ceil(steps / block))
  for (let b = 0; b < blocks; b++) {
    for (const w of b % 2 === 0 ? ways : [...ways].reverse()) {
      const t0 = performance.now()
      const r = await w.trainer.trainSteps(w.model, { steps: block, batchSize, autodiff: w.autodiff })
      w.ms += performance.now() - t0
      w.loss = r.loss
    }
  }
  const rate = (w: (typeof ways)[number]) => ((blocks * block) / w.ms) * 1000
  const base = ways.at(-1)!
  for (const w of ways) {
    console.log(
      `step ${w.name}: ${rate(w).toFixed(0)} steps/s = ${(rate(w) / rate(base)).toFixed(2)}x, last block's loss ${w.loss.toFixed(4)}`,
    )
    w.model.dispose()
  }
  console.log(`(${blocks} alternating blocks of ${block} steps; ratios against ${base.name})`)
}

if (!values['skip-converge']) {
  const peers = Number(values.peers)
  const seed = Number(values.seed)
  const share = partition(train.labels, { spec: 'iid', peers, seed })[0]
  const data = selectSamples(train, share)
  const evalSet = testSubset(2000)
  const model = buildModel(arch, { seed, learningRate, optimizer })
  const trainer = new LocalTrainer({ data, seed })
  const target = Number(values.target)
  const every = Number(values['eval-every'])
  let done = 0
  let reached: number | undefined
  const curve: string[] = []
  while (done < Number(values['max-steps'])) {
    await trainer.trainSteps(model, { steps: every, batchSize })
    done += every
    const { accuracy } = await evaluate(model, evalSet)
    curve.push(`${done}:${accuracy.toFixed(3)}`)
    if (reached === undefined && accuracy >= target) {
      reached = done
      break
    }
  }
  console.log(`converge (${data.count} local samples): ${curve.join(' ')}`)
  console.log(
    reached === undefined
      ? `target ${target} not reached in ${done} steps`
      : `target ${target} reached after ${reached} steps`,
  )
  model.dispose()
}

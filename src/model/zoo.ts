/**
 * The model zoo: MNIST architectures with fixed tensor names (see ArchSpec in
 * types.ts), seeded initialisation and a per-model optimizer.
 */
import * as tf from '@tensorflow/tfjs'
import { InvalidArgumentError } from '../util/errors.ts'
import { createRng, randomSeed } from '../util/rng.ts'
import type { ArchKind, ArchSpec, ModelState, NamedTensor } from './types.ts'

/** Image side and class count of the MNIST family. */
export const IMAGE_SIZE = 28
export const NUM_CLASSES = 10
export const INPUT_DIM = IMAGE_SIZE * IMAGE_SIZE

/** Largest hidden width accepted: far above anything useful on MNIST, low enough to bound memory. */
export const MAX_HIDDEN = 4096

/**
 * Adam step size. On a 1/10 iid share of MNIST (batch 32, MLP 784-128-10, 3 seeds) 2e-3
 * beat 1e-3 by ~1 point at 500-2000 steps and matched 3e-3 (scripts/bench/model-step.ts).
 */
export const DEFAULT_LEARNING_RATE = 2e-3

/** Name of the weightless output layer: training takes logits from the layer before it. */
export const SOFTMAX_LAYER = 'softmax'

export type OptimizerKind = 'adam' | 'sgd'

export interface BuildModelOptions {
  /** Seed of the glorot-uniform initialisation; random when absent. */
  seed?: number
  /** Default DEFAULT_LEARNING_RATE. */
  learningRate?: number
  /** Default 'adam'. */
  optimizer?: OptimizerKind
}

/** A tensor's name and shape, without values. */
export interface TensorSpec {
  name: string
  shape: number[]
}

/** The default spec of each kind (mlp 128 hidden, cnn 64). */
/** Every architecture the zoo builds. */
export const ARCH_KINDS: readonly ArchKind[] = ['mlp', 'cnn']

/** The default architecture: the MLP trains ~5x faster than the CNN per step on the wasm backend. */
export const DEFAULT_ARCH_KIND: ArchKind = 'mlp'

export function defaultArch(kind: ArchKind): ArchSpec {
  switch (kind) {
    case 'mlp':
      return { kind, hidden: 128 }
    case 'cnn':
      return { kind, hidden: 64 }
    default:
      throw new InvalidArgumentError(`unknown architecture kind: ${String(kind)}`)
  }
}

/** Throws InvalidArgumentError unless `spec` is a buildable architecture. */
export function validateArch(spec: ArchSpec): void {
  if (spec === null || typeof spec !== 'object')
    throw new InvalidArgumentError('architecture spec must be an object')
  if (spec.kind !== 'mlp' && spec.kind !== 'cnn') {
    throw new InvalidArgumentError(`unknown architecture kind: ${String(spec.kind)} (expected mlp or cnn)`)
  }
  if (!Number.isInteger(spec.hidden) || spec.hidden < 1 || spec.hidden > MAX_HIDDEN) {
    throw new InvalidArgumentError(
      `hidden units must be an integer in [1, ${MAX_HIDDEN}], got ${spec.hidden}`,
    )
  }
}

/** Parses 'mlp', 'cnn', 'mlp:256' or 'cnn:32' (kind[:hidden]) for the CLI and config files. */
export function parseArch(text: string): ArchSpec {
  const m = /^(mlp|cnn)(?::(\d+))?$/.exec(text.trim())
  if (m === null)
    throw new InvalidArgumentError(
      `bad architecture "${text}": expected mlp, cnn, mlp:<hidden> or cnn:<hidden>`,
    )
  const spec =
    m[2] === undefined ? defaultArch(m[1] as ArchKind) : { kind: m[1] as ArchKind, hidden: Number(m[2]) }
  validateArch(spec)
  return spec
}

/** Shape of one input sample: [784] for the MLP, [28, 28, 1] for the CNN. */
export function inputShape(spec: ArchSpec): number[] {
  return spec.kind === 'mlp' ? [INPUT_DIM] : [IMAGE_SIZE, IMAGE_SIZE, 1]
}

/** Output channels and kernel size of the CNN's two conv layers (fixed by the ArchSpec contract). */
const CNN_CONV = [
  { filters: 8, kernel: 3 },
  { filters: 16, kernel: 3 },
] as const
/** Flattened CNN feature size: 28 -> conv 26 -> pool 13 -> conv 11 -> pool 5; 5*5*16. */
const CNN_FLAT = 5 * 5 * 16

/** The tensors of an architecture in canonical order (the order of getState and of the wire). */
export function archTensors(spec: ArchSpec): TensorSpec[] {
  validateArch(spec)
  const out: TensorSpec[] = []
  let denseIn = INPUT_DIM
  if (spec.kind === 'cnn') {
    let inC = 1
    CNN_CONV.forEach(({ filters, kernel }, i) => {
      out.push({ name: `conv_${i}/kernel`, shape: [kernel, kernel, inC, filters] })
      out.push({ name: `conv_${i}/bias`, shape: [filters] })
      inC = filters
    })
    denseIn = CNN_FLAT
  }
  out.push({ name: 'dense_0/kernel', shape: [denseIn, spec.hidden] })
  out.push({ name: 'dense_0/bias', shape: [spec.hidden] })
  out.push({ name: 'dense_1/kernel', shape: [spec.hidden, NUM_CLASSES] })
  out.push({ name: 'dense_1/bias', shape: [NUM_CLASSES] })
  return out
}

/**
 * Stable fingerprint of architecture + tensor names/shapes, e.g.
 * 'mlp-784-128-10|dense_0/kernel:784x128,dense_0/bias:128,...'. Equal strings mean mergeable states.
 */
export function archFingerprint(spec: ArchSpec): string {
  const tensors = archTensors(spec)
  const head =
    spec.kind === 'mlp'
      ? `mlp-${INPUT_DIM}-${spec.hidden}-${NUM_CLASSES}`
      : `cnn-${IMAGE_SIZE}x${IMAGE_SIZE}x1-c${CNN_CONV.map((c) => `${c.kernel}x${c.kernel}x${c.filters}`).join('-c')}-${spec.hidden}-${NUM_CLASSES}`
  return `${head}|${tensors.map((t) => `${t.name}:${t.shape.join('x')}`).join(',')}`
}

/**
 * Seeded initial weights without tfjs: glorot-uniform kernels (limit sqrt(6 / (fanIn + fanOut)),
 * receptive field included for convs) and zero biases, drawn tensor by tensor in canonical order.
 */
export function initialState(spec: ArchSpec, seed: number): ModelState {
  const rng = createRng(seed)
  const tensors: NamedTensor[] = archTensors(spec).map(({ name, shape }) => {
    const size = shape.reduce((a, b) => a * b, 1)
    const values = new Float32Array(size)
    if (name.endsWith('/kernel')) {
      const receptive = shape.length === 4 ? shape[0] * shape[1] : 1
      const fanIn = shape[shape.length - 2] * receptive
      const fanOut = shape[shape.length - 1] * receptive
      const limit = Math.sqrt(6 / (fanIn + fanOut))
      for (let i = 0; i < size; i++) values[i] = (2 * rng.next() - 1) * limit
    }
    return { name, shape: [...shape], values }
  })
  return { arch: archFingerprint(spec), age: 0, tensors }
}

/**
 * The model's weight variables named by the convention ('dense_0/kernel'): layer name plus
 * the weight's own name. For zoo models this is archTensors order.
 */
export function namedWeights(model: tf.LayersModel): Array<{ name: string; variable: tf.LayerVariable }> {
  const out: Array<{ name: string; variable: tf.LayerVariable }> = []
  for (const layer of model.layers) {
    for (const variable of layer.weights) {
      const full = variable.originalName
      out.push({ name: `${layer.name}/${full.slice(full.lastIndexOf('/') + 1)}`, variable })
    }
  }
  return out
}

const archOfModel = new WeakMap<tf.LayersModel, ArchSpec>()

/** The ArchSpec a zoo model was built from (undefined for models built elsewhere). */
export function modelArch(model: tf.LayersModel): ArchSpec | undefined {
  const spec = archOfModel.get(model)
  return spec === undefined ? undefined : { ...spec }
}

/** Creates a fresh optimizer of the given kind (one per model: Adam keeps per-variable moments). */
export function createOptimizer(
  kind: OptimizerKind = 'adam',
  learningRate = DEFAULT_LEARNING_RATE,
): tf.Optimizer {
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
    throw new InvalidArgumentError(`learning rate must be a positive number, got ${learningRate}`)
  }
  switch (kind) {
    case 'adam':
      return tf.train.adam(learningRate)
    case 'sgd':
      return tf.train.sgd(learningRate)
    default:
      throw new InvalidArgumentError(`unknown optimizer: ${String(kind)} (expected adam or sgd)`)
  }
}

/**
 * Builds and compiles a zoo model. Layers are named after the tensor convention
 * (conv_i, dense_i) plus pools/flatten and a final weightless 'softmax' layer, so
 * outputs are probabilities while training can use the logits. Call model.dispose() when done.
 */
export function buildModel(spec: ArchSpec, options: BuildModelOptions = {}): tf.LayersModel {
  validateArch(spec)
  const optimizer = createOptimizer(options.optimizer, options.learningRate)
  const seed = options.seed ?? randomSeed()
  // 'zeros' initialisers: the real values come from our seeded rng right after build.
  const model = tf.sequential({ name: `${spec.kind}_${spec.hidden}` })
  if (spec.kind === 'cnn') {
    CNN_CONV.forEach(({ filters, kernel }, i) => {
      model.add(
        tf.layers.conv2d({
          name: `conv_${i}`,
          ...(i === 0 ? { inputShape: inputShape(spec) } : {}),
          filters,
          kernelSize: kernel,
          padding: 'valid',
          activation: 'relu',
          kernelInitializer: 'zeros',
          biasInitializer: 'zeros',
        }),
      )
      model.add(tf.layers.maxPooling2d({ name: `pool_${i}`, poolSize: 2, strides: 2 }))
    })
    model.add(tf.layers.flatten({ name: 'flatten' }))
  }
  model.add(
    tf.layers.dense({
      name: 'dense_0',
      ...(spec.kind === 'mlp' ? { inputShape: inputShape(spec) } : {}),
      units: spec.hidden,
      activation: 'relu',
      kernelInitializer: 'zeros',
      biasInitializer: 'zeros',
    }),
  )
  model.add(
    tf.layers.dense({
      name: 'dense_1',
      units: NUM_CLASSES,
      activation: 'linear',
      kernelInitializer: 'zeros',
      biasInitializer: 'zeros',
    }),
  )
  model.add(tf.layers.activation({ name: SOFTMAX_LAYER, activation: 'softmax' }))
  model.compile({ optimizer, loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] })

  const init = initialState(spec, seed)
  const byName = new Map(init.tensors.map((t) => [t.name, t]))
  tf.tidy(() => {
    for (const { name, variable } of namedWeights(model)) {
      const t = byName.get(name)!
      variable.write(tf.tensor(t.values, t.shape))
    }
  })
  archOfModel.set(model, { kind: spec.kind, hidden: spec.hidden })
  return model
}

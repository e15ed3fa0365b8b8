/**
 * The model zoo: tfjs networks built from an ArchSpec (shapes from the dataset, see arch.ts),
 * with fixed tensor names, seeded initialisation and a per-model optimizer.
 */
import { InvalidArgumentError } from '../util/errors.ts'
import { randomSeed } from '../util/rng.ts'
import { Adam, assertLearningRate } from './adam.ts'
import { archClasses, CNN_CONV, copyArch, initialState, inputShape, validateArch } from './arch.ts'
import * as tf from './tf.ts'
import type { ArchSpec } from './types.ts'

export {
  ARCH_KINDS,
  archClasses,
  archFingerprint,
  archInput,
  archTensors,
  CNN_CONV,
  cnnPooledSide,
  copyArch,
  type DatasetShape,
  DEFAULT_ARCH_KIND,
  DEFAULT_INPUT_SHAPE,
  datasetArch,
  defaultArch,
  IMAGE_SIZE,
  INPUT_DIM,
  initialState,
  inputShape,
  MAX_FEATURES,
  MAX_HIDDEN,
  MAX_PARAMS,
  MIN_CNN_SIDE,
  NUM_CLASSES,
  parseArch,
  type TensorSpec,
  UNTAGGED_DATASET,
  validateArch,
} from './arch.ts'

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
  return spec === undefined ? undefined : copyArch(spec)
}

/** Creates a fresh optimizer of the given kind (one per model: Adam keeps per-variable moments). */
export function createOptimizer(
  kind: OptimizerKind = 'adam',
  learningRate = DEFAULT_LEARNING_RATE,
): tf.Optimizer {
  assertLearningRate(learningRate)
  switch (kind) {
    case 'adam':
      return new Adam(learningRate)
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
      units: archClasses(spec),
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
  archOfModel.set(model, copyArch(spec))
  return model
}

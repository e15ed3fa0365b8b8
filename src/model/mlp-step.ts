/**
 * One training step of a zoo MLP (dense relu -> dense -> softmax) with its backward pass written
 * out, instead of tfjs's tape: the same gradients (test/unit/model/mlp-step.test.ts compares the
 * weights after many steps) in a third fewer kernel calls, with the small per-sample parts (softmax
 * cross-entropy, the relu mask, bias gradients) in plain loops. On the wasm backend that made a step
 * 1.2x faster and left less garbage per step, whose collection runs on helper threads that compete
 * with other processes for the same cores (docs/BENCHMARKS.md, "Hand-written MLP backprop").
 * The model's own optimizer applies the gradients, so Adam's moments and any optimizer work as before.
 */
import * as tf from './tf.ts'
import { modelArch, SOFTMAX_LAYER } from './zoo.ts'

/** The variables of a zoo MLP, in the order of model.trainableWeights (the optimizer's slot order). */
export interface MlpVariables {
  kernel0: tf.Variable
  bias0: tf.Variable
  kernel1: tf.Variable
  bias1: tf.Variable
}

/** The MLP's variables when `model` is a zoo MLP whose layers are as buildModel made them, else undefined. */
export function mlpVariables(model: tf.LayersModel): MlpVariables | undefined {
  if (modelArch(model)?.kind !== 'mlp') return undefined
  const names = model.layers.map((l) => l.name)
  if (names.length !== 3 || names[0] !== 'dense_0' || names[1] !== 'dense_1' || names[2] !== SOFTMAX_LAYER)
    return undefined
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable)
  if (vars.length !== 4) return undefined
  const [kernel0, bias0, kernel1, bias1] = vars
  if (kernel0.rank !== 2 || bias0.rank !== 1 || kernel1.rank !== 2 || bias1.rank !== 1) return undefined
  return { kernel0, bias0, kernel1, bias1 }
}

/**
 * Runs one step on a batch: `xs` holds `batch` rows of the model's inputs, `ys` their one-hot
 * labels. Minimises the mean softmax cross-entropy (as tf.losses.softmaxCrossEntropy) with
 * `optimizer`, in place. Returns the batch's loss before the step.
 */
export function mlpStep(
  optimizer: tf.Optimizer,
  v: MlpVariables,
  xs: Float32Array,
  ys: Float32Array,
  batch: number,
): number {
  const [inputs, hidden] = v.kernel0.shape as [number, number]
  const classes = v.kernel1.shape[1] as number
  let loss = 0
  tf.tidy(() => {
    const x = tf.tensor2d(xs, [batch, inputs], 'float32')
    const h = tf.fused.matMul({ a: x, b: v.kernel0, bias: v.bias0, activation: 'relu' })
    const logits = tf.fused.matMul({ a: h, b: v.kernel1, bias: v.bias1 })
    const dLogits = new Float32Array(batch * classes)
    const dBias1 = new Float32Array(classes)
    loss = softmaxCrossEntropyGrad(logits.dataSync() as Float32Array, ys, batch, classes, dLogits, dBias1)
    const dLogitsT = tf.tensor2d(dLogits, [batch, classes], 'float32')
    const dKernel1 = tf.matMul(h, dLogitsT, true, false)
    const dH = tf.matMul(dLogitsT, v.kernel1, false, true)
    const dPre = new Float32Array(batch * hidden)
    const dBias0 = new Float32Array(hidden)
    reluGrad(h.dataSync() as Float32Array, dH.dataSync() as Float32Array, hidden, dPre, dBias0)
    const dKernel0 = tf.matMul(x, tf.tensor2d(dPre, [batch, hidden], 'float32'), true, false)
    optimizer.applyGradients([
      { name: v.kernel0.name, tensor: dKernel0 },
      { name: v.bias0.name, tensor: tf.tensor1d(dBias0, 'float32') },
      { name: v.kernel1.name, tensor: dKernel1 },
      { name: v.bias1.name, tensor: tf.tensor1d(dBias1, 'float32') },
    ])
  })
  return loss
}

/**
 * Mean softmax cross-entropy of `logits` (batch x classes) against one-hot `ys`; writes its gradient
 * (softmax - y) / batch into `dLogits` and the gradient's column sums (the bias's) into `dBias`.
 */
export function softmaxCrossEntropyGrad(
  logits: Float32Array,
  ys: Float32Array,
  batch: number,
  classes: number,
  dLogits: Float32Array,
  dBias: Float32Array,
): number {
  let loss = 0
  for (let k = 0; k < batch; k++) {
    const row = k * classes
    let max = Number.NEGATIVE_INFINITY
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[row + c])
    let sum = 0
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[row + c] - max)
    const logSum = max + Math.log(sum)
    for (let c = 0; c < classes; c++) {
      const logP = logits[row + c] - logSum
      const y = ys[row + c]
      loss -= y * logP
      const g = (Math.exp(logP) - y) / batch
      dLogits[row + c] = g
      dBias[c] += g
    }
  }
  return loss / batch
}

/** The relu's backward pass: dPre = dH where the activation `h` is positive, 0 elsewhere; column sums into dBias. */
export function reluGrad(
  h: Float32Array,
  dH: Float32Array,
  hidden: number,
  dPre: Float32Array,
  dBias: Float32Array,
): void {
  for (let i = 0; i < h.length; i++) {
    if (h[i] > 0) {
      dPre[i] = dH[i]
      dBias[i % hidden] += dH[i]
    }
  }
}

import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { initBackend } from '../../../src/model/backend.ts'
import { mlpStep, mlpVariables, reluGrad, softmaxCrossEntropyGrad } from '../../../src/model/mlp-step.ts'
import * as tf from '../../../src/model/tf.ts'
import { buildModel, type OptimizerKind, SOFTMAX_LAYER } from '../../../src/model/zoo.ts'
import { createRng } from '../../../src/util/rng.ts'
import { maxDiff, toyBatches } from './toy-batches.ts'

const SPEC = { kind: 'mlp', hidden: 24, input: [12], classes: 5, dataset: 'toy' } as const
const BATCH = 8

const models: tf.LayersModel[] = []
function build(seed: number, optimizer: OptimizerKind = 'adam'): tf.LayersModel {
  const m = buildModel(SPEC, { seed, optimizer })
  models.push(m)
  return m
}

/** Seeded batches of random features and one-hot labels. */
const batches = (n: number, seed: number) => toyBatches(n, seed, { batch: BATCH, inputs: 12, classes: 5 })

/** The reference: tfjs's autodiff of the same loss, through the same optimizer API. */
function autodiffStep(model: tf.LayersModel, xs: Float32Array, ys: Float32Array): number {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable)
  const body = model.layers.slice(0, -1)
  const cost = tf.tidy(() => {
    const x = tf.tensor2d(xs, [BATCH, 12])
    const y = tf.tensor2d(ys, [BATCH, 5])
    return model.optimizer!.minimize(
      () => {
        let h: tf.Tensor = x
        for (const layer of body) h = layer.apply(h, { training: true }) as tf.Tensor
        return tf.losses.softmaxCrossEntropy(y, h) as tf.Scalar
      },
      true,
      vars,
    )!
  })
  const loss = cost.dataSync()[0]
  cost.dispose()
  return loss
}

function weights(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((t) => t.dataSync() as Float32Array)
}

describe('mlpStep', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose()
  })

  it('finds the four variables of a zoo MLP in trainable order, and nothing in other models', () => {
    const model = build(1)
    const v = mlpVariables(model)
    expect(v).toBeDefined()
    expect([v!.kernel0.shape, v!.bias0.shape, v!.kernel1.shape, v!.bias1.shape]).toEqual([
      [12, 24],
      [24],
      [24, 5],
      [5],
    ])
    const cnn = buildModel({ kind: 'cnn', hidden: 8 }, { seed: 1 })
    models.push(cnn)
    expect(mlpVariables(cnn)).toBeUndefined()
    // Same layer names, but not built by the zoo: the step cannot vouch for its activations.
    const foreign = tf.sequential({
      layers: [
        tf.layers.dense({ name: 'dense_0', inputShape: [12], units: 24, activation: 'tanh' }),
        tf.layers.dense({ name: 'dense_1', units: 5 }),
        tf.layers.activation({ name: SOFTMAX_LAYER, activation: 'softmax' }),
      ],
    })
    models.push(foreign)
    expect(mlpVariables(foreign)).toBeUndefined()
  })

  for (const optimizer of ['adam', 'sgd'] as const) {
    it(`takes the same steps as tfjs's autodiff (${optimizer}, 40 steps)`, () => {
      const ours = build(7, optimizer)
      const ref = build(7, optimizer)
      const v = mlpVariables(ours)!
      const initial = weights(ours)
      const losses: Array<[number, number]> = []
      for (const { xs, ys } of batches(40, 3)) {
        losses.push([mlpStep(ours.optimizer!, v, xs, ys, BATCH), autodiffStep(ref, xs, ys)])
      }
      for (const [a, b] of losses) expect(a).toBeCloseTo(b, 5)
      const a = weights(ours)
      const b = weights(ref)
      for (let t = 0; t < a.length; t++) {
        // The steps moved every tensor far more than the two runs differ.
        expect(maxDiff(a[t], initial[t])).toBeGreaterThan(1e-3)
        expect(maxDiff(a[t], b[t])).toBeLessThan(1e-5)
      }
    })
  }

  it('leaves no tensor behind after a step', () => {
    const model = build(2)
    const v = mlpVariables(model)!
    const [first, ...rest] = batches(3, 4)
    // The first step creates Adam's moment variables; count from the second.
    mlpStep(model.optimizer!, v, first.xs, first.ys, BATCH)
    const before = tf.memory().numTensors
    for (const { xs, ys } of rest) mlpStep(model.optimizer!, v, xs, ys, BATCH)
    expect(tf.memory().numTensors).toBe(before)
  })
})

describe('softmaxCrossEntropyGrad', () => {
  it("matches tfjs's loss and gradient on random logits", () => {
    const rng = createRng(9)
    const batch = 6
    const classes = 4
    const logits = Float32Array.from({ length: batch * classes }, () => rng.next() * 20 - 10)
    const ys = new Float32Array(batch * classes)
    for (let k = 0; k < batch; k++) ys[k * classes + (k % classes)] = 1
    const dLogits = new Float32Array(batch * classes)
    const dBias = new Float32Array(classes)
    const loss = softmaxCrossEntropyGrad(logits, ys, batch, classes, dLogits, dBias)
    const y = tf.tensor2d(ys, [batch, classes])
    const l = tf.tensor2d(logits, [batch, classes])
    const f = (t: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, t)
    const { value, grad } = tf.valueAndGrad(f)(l)
    expect(loss).toBeCloseTo(value.dataSync()[0], 5)
    const g = grad.dataSync()
    for (let i = 0; i < g.length; i++) expect(dLogits[i]).toBeCloseTo(g[i], 6)
    for (let c = 0; c < classes; c++) {
      let sum = 0
      for (let k = 0; k < batch; k++) sum += g[k * classes + c]
      expect(dBias[c]).toBeCloseTo(sum, 6)
    }
    tf.dispose([y, l, value, grad])
  })
})

describe('reluGrad', () => {
  it('passes the gradient where the activation is positive and sums it per unit', () => {
    const h = Float32Array.from([0, 2, 0.5, 0, 0, 3])
    const dH = Float32Array.from([1, 2, 3, 4, 5, 6])
    const dPre = new Float32Array(6)
    const dBias = new Float32Array(3)
    reluGrad(h, dH, 3, dPre, dBias)
    expect([...dPre]).toEqual([0, 2, 3, 0, 0, 6])
    expect([...dBias]).toEqual([0, 2, 9])
  })
})

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testSubset } from '../../../src/data/mnist.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { evaluate } from '../../../src/model/evaluate.ts'
import * as tf from '../../../src/model/tf.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import { buildModel } from '../../../src/model/zoo.ts'

const isInvalidArgument = expect.objectContaining({ name: 'InvalidArgumentError' })
// 700 samples: not a multiple of the batch sizes below, so the last batch is a short one.
const data = testSubset(700)

/** Accuracy and loss from tfjs's own predict (its batching, its outputs), computed here by hand. */
function reference(model: tf.LayersModel): { accuracy: number; loss: number } {
  const probs = tf.tidy(() => {
    const xs = tf.tensor(data.features, [data.count, 784])
    return model.predict(xs, { batchSize: 64 }) as tf.Tensor
  })
  const p = probs.dataSync()
  probs.dispose()
  let correct = 0
  let loss = 0
  for (let k = 0; k < data.count; k++) {
    const row = Array.from(p.subarray(k * 10, (k + 1) * 10))
    if (row.indexOf(Math.max(...row)) === data.labels[k]) correct++
    loss -= Math.log(Math.max(row[data.labels[k]!]!, 1e-7))
  }
  return { accuracy: correct / data.count, loss: loss / data.count }
}

describe('evaluate', () => {
  let model: tf.LayersModel
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
    model = buildModel({ kind: 'mlp', hidden: 32 }, { seed: 3 })
    // Some training, so accuracy is neither chance nor 1 and a wrong count would show.
    await new LocalTrainer({ data, seed: 1 }).trainSteps(model, { steps: 30 })
  })
  afterAll(() => model.dispose())

  it('matches tfjs predict on the same samples, whatever the batch size', async () => {
    const want = reference(model)
    expect(want.accuracy).toBeGreaterThan(0.2)
    expect(want.accuracy).toBeLessThan(1)
    for (const batchSize of [1, 128, 500, 1000]) {
      const got = await evaluate(model, data, { batchSize })
      expect(got.count).toBe(700)
      expect(got.accuracy).toBe(want.accuracy)
      expect(got.loss).toBeCloseTo(want.loss, 4)
    }
  })

  it('leaves the weights alone', async () => {
    const before = model.getWeights().map((w) => w.dataSync().slice())
    await evaluate(model, data)
    const after = model.getWeights().map((w) => w.dataSync())
    for (const [i, a] of after.entries()) expect(Array.from(a)).toEqual(Array.from(before[i]!))
  })

  it('refuses a bad batch size and an empty dataset', async () => {
    await expect(evaluate(model, data, { batchSize: 0 })).rejects.toEqual(isInvalidArgument)
    const empty = { ...data, count: 0, features: new Float32Array(0), labels: new Uint8Array(0) }
    await expect(evaluate(model, empty)).rejects.toEqual(isInvalidArgument)
  })

  it('stops between batches when aborted', async () => {
    const controller = new AbortController()
    controller.abort()
    await expect(evaluate(model, data, { batchSize: 100, signal: controller.signal })).rejects.toEqual(
      expect.objectContaining({ name: 'AbortError' }),
    )
  })
})

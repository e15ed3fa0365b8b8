/**
 * A peer keeps its share as bytes (Dataset.trainShare / testShare) and decodes batches as it goes:
 * training and evaluation must give exactly what they give on the decoded floats.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mnistDataset } from '../../../src/data/mnist.ts'
import { range } from '../../../src/data/samples.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { evaluate } from '../../../src/model/evaluate.ts'
import { getState } from '../../../src/model/state.ts'
import type * as tf from '../../../src/model/tf.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import { buildModel } from '../../../src/model/zoo.ts'

const MLP = { kind: 'mlp', hidden: 16 } as const
const models: tf.LayersModel[] = []
function build(seed: number): tf.LayersModel {
  const m = buildModel(MLP, { seed })
  models.push(m)
  return m
}

describe('training and evaluating on a compact share', () => {
  const ds = mnistDataset()
  const indices = Array.from(range(600), (i) => (i * 97) % ds.trainCount)
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose()
  })

  it('the same seed trains to the same weights and loss on bytes as on floats', async () => {
    const onFloats = build(5)
    const onBytes = build(5)
    const a = await new LocalTrainer({ data: ds.trainSamples(indices), seed: 9 }).trainSteps(onFloats, {
      steps: 12,
    })
    const b = await new LocalTrainer({ data: ds.trainShare(indices), seed: 9 }).trainSteps(onBytes, {
      steps: 12,
    })
    expect(b.loss).toBe(a.loss)
    const wa = getState(onFloats, { arch: 'x', age: 0 }).tensors
    const wb = getState(onBytes, { arch: 'x', age: 0 }).tensors
    expect(wb.map((t) => Array.from(t.values))).toEqual(wa.map((t) => Array.from(t.values)))
  })

  it('evaluation on the byte test subset equals evaluation on its floats, for any batch size', async () => {
    const model = build(6)
    await new LocalTrainer({ data: ds.trainShare(indices), seed: 1 }).trainSteps(model, { steps: 20 })
    const floats = await evaluate(model, ds.testSamples(450), { batchSize: 200 })
    const bytes = await evaluate(model, ds.testShare(450), { batchSize: 200 })
    expect(bytes).toEqual(floats)
    expect(await evaluate(model, ds.testShare(450), { batchSize: 450 })).toEqual(floats)
  })

  it('a store whose rows do not fit the model is an InvalidArgumentError', async () => {
    const model = build(7)
    const wrong = { ...ds.testShare(10), size: 100 }
    await expect(evaluate(model, wrong)).rejects.toMatchObject({ name: 'InvalidArgumentError' })
    await expect(
      new LocalTrainer({ data: wrong, seed: 1 }).trainSteps(model, { steps: 1 }),
    ).rejects.toMatchObject({ name: 'InvalidArgumentError' })
  })
})

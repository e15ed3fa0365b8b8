import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Adam, SMALL_TENSOR } from '../../../src/model/adam.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { mlpStep, mlpVariables } from '../../../src/model/mlp-step.ts'
import * as tf from '../../../src/model/tf.ts'
import { buildModel } from '../../../src/model/zoo.ts'
import { maxDiff, toyBatches } from './toy-batches.ts'

// The first kernel (200 x 32 = 6400 values) goes through kernels, the rest through the loop.
const SPEC = { kind: 'mlp', hidden: 32, input: [200], classes: 5, dataset: 'toy' } as const
const BATCH = 8

const models: tf.LayersModel[] = []
function build(seed: number): tf.LayersModel {
  const m = buildModel(SPEC, { seed })
  models.push(m)
  return m
}

const batches = (n: number, seed: number) => toyBatches(n, seed, { batch: BATCH, inputs: 200, classes: 5 })

const weights = (m: tf.LayersModel) => m.getWeights().map((t) => t.dataSync() as Float32Array)

describe('Adam', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose()
  })

  it('is what zoo models are compiled with', () => {
    expect(build(1).optimizer).toBeInstanceOf(Adam)
  })

  it("takes tf.train.adam's steps, on tensors above and below SMALL_TENSOR (60 steps)", () => {
    const ours = build(3)
    const ref = build(3)
    const reference = tf.train.adam(ours.optimizer instanceof Adam ? ours.optimizer.learningRate : 0)
    const sizes = ours.getWeights().map((t) => t.size)
    expect(sizes.some((s) => s > SMALL_TENSOR) && sizes.some((s) => s <= SMALL_TENSOR)).toBe(true)
    const start = weights(ours)
    const vOurs = mlpVariables(ours)!
    const vRef = mlpVariables(ref)!
    for (const { xs, ys } of batches(60, 5)) {
      mlpStep(ours.optimizer!, vOurs, xs, ys, BATCH)
      mlpStep(reference, vRef, xs, ys, BATCH)
    }
    const a = weights(ours)
    const b = weights(ref)
    for (let t = 0; t < a.length; t++) {
      expect(maxDiff(a[t], start[t])).toBeGreaterThan(1e-3)
      expect(maxDiff(a[t], b[t])).toBeLessThan(1e-5)
    }
    expect(ours.optimizer!.iterations).toBe(60)
    reference.dispose()
  })

  it('carries on where it left off after getWeights / setWeights into a fresh one', async () => {
    const a = build(5)
    const b = build(5)
    const [first, ...rest] = batches(6, 7)
    const va = mlpVariables(a)!
    const vb = mlpVariables(b)!
    for (const { xs, ys } of [first, ...rest.slice(0, 2)]) {
      mlpStep(a.optimizer!, va, xs, ys, BATCH)
      mlpStep(b.optimizer!, vb, xs, ys, BATCH)
    }
    const saved = await b.optimizer!.getWeights()
    expect(saved.map((w) => w.name).slice(0, 2)).toEqual(['iter', `${vb.kernel0.name}/m`])
    const fresh = new Adam(0.002)
    await fresh.setWeights(saved)
    expect(fresh.iterations).toBe(3)
    b.optimizer!.dispose()
    b.optimizer = fresh
    for (const { xs, ys } of rest.slice(2)) {
      mlpStep(a.optimizer!, va, xs, ys, BATCH)
      mlpStep(b.optimizer!, vb, xs, ys, BATCH)
    }
    const wa = weights(a)
    const wb = weights(b)
    for (let t = 0; t < wa.length; t++) expect(maxDiff(wa[t], wb[t])).toBe(0)
    // A fresh optimizer without the moments takes other steps: the comparison can fail.
    const c = build(5)
    const vc = mlpVariables(c)!
    for (const { xs, ys } of [first, ...rest.slice(0, 2)]) mlpStep(c.optimizer!, vc, xs, ys, BATCH)
    c.optimizer!.dispose()
    c.optimizer = new Adam(0.002)
    for (const { xs, ys } of rest.slice(2)) mlpStep(c.optimizer!, vc, xs, ys, BATCH)
    expect(maxDiff(weights(c)[0], wa[0])).toBeGreaterThan(1e-4)
  })

  it('frees its moments and constants on dispose', () => {
    const model = build(4)
    const before = tf.memory().numTensors
    const adam = new Adam(0.01)
    const [{ xs, ys }] = batches(1, 6)
    mlpStep(adam, mlpVariables(model)!, xs, ys, BATCH)
    // Constants and the first kernel's two moments are tensors; the small tensors' moments are not.
    expect(tf.memory().numTensors).toBe(before + 6 + 2)
    adam.dispose()
    expect(tf.memory().numTensors).toBe(before)
  })

  it('rejects a learning rate that is not a positive number', () => {
    for (const lr of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new Adam(lr)).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
    }
  })
})

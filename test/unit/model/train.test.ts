import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadMnist, testSubset } from '../../../src/data/mnist.ts'
import { partition } from '../../../src/data/partition.ts'
import { selectSamples } from '../../../src/data/samples.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { evaluate } from '../../../src/model/evaluate.ts'
import { getState, stateDistance } from '../../../src/model/state.ts'
import type * as tf from '../../../src/model/tf.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import { buildModel } from '../../../src/model/zoo.ts'
import { createRng } from '../../../src/util/rng.ts'

const MLP = { kind: 'mlp', hidden: 32 } as const
const isInvalidArgument = expect.objectContaining({ name: 'InvalidArgumentError' })
const train = loadMnist({ split: 'train', limit: 3000 })
const evalSet = testSubset(500)

const models: tf.LayersModel[] = []
function build(seed: number): tf.LayersModel {
  const m = buildModel(MLP, { seed })
  models.push(m)
  return m
}

/** A signal that reports aborted from its (n+1)-th check on: deterministic, no timers. */
function abortAfterChecks(n: number): AbortSignal {
  let checks = 0
  return {
    get aborted() {
      return ++checks > n
    },
  } as AbortSignal
}

describe('LocalTrainer', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose()
  })

  it('learns: a few hundred steps on an iid slice beat chance by far', async () => {
    const model = build(1)
    const before = await evaluate(model, evalSet)
    expect(before.accuracy).toBeLessThan(0.3)
    const trainer = new LocalTrainer({ data: train, seed: 1 })
    const first = await trainer.trainSteps(model, { steps: 20 })
    const rest = await trainer.trainSteps(model, { steps: 280 })
    expect(rest.loss).toBeLessThan(first.loss)
    const after = await evaluate(model, evalSet)
    expect(after.accuracy).toBeGreaterThan(0.8)
    expect(after.loss).toBeLessThan(before.loss / 2)
  })

  it('reports steps and samples; the same seeds give the same weights', async () => {
    const run = async () => {
      const model = build(2)
      const trainer = new LocalTrainer({ data: train, seed: 3 })
      const r = await trainer.trainSteps(model, { steps: 25, batchSize: 16 })
      return { r, state: getState(model) }
    }
    const a = await run()
    const b = await run()
    expect(a.r).toMatchObject({ steps: 25, samples: 400, aborted: false })
    expect(Number.isFinite(a.r.loss)).toBe(true)
    expect(stateDistance(a.state, b.state)).toBe(0)
    expect(a.r.loss).toBe(b.r.loss)
  })

  it("a zoo MLP's hand-written steps follow autodiff's (the `autodiff` option)", async () => {
    const run = async (autodiff: boolean) => {
      const model = build(4)
      const trainer = new LocalTrainer({ data: train, seed: 5 })
      const r = await trainer.trainSteps(model, { steps: 30, batchSize: 16, autodiff })
      return { loss: r.loss, state: getState(model) }
    }
    const start = getState(build(4))
    const ours = await run(false)
    const ref = await run(true)
    expect(ours.loss).toBeCloseTo(ref.loss, 4)
    // 30 steps moved the weights three orders of magnitude further than the two ways differ.
    const moved = stateDistance(start, ref.state)
    expect(moved).toBeGreaterThan(0.1)
    expect(stateDistance(ours.state, ref.state)).toBeLessThan(moved * 1e-3)
  })

  it('batch order depends on the rng', async () => {
    const a = build(2)
    const b = build(2)
    await new LocalTrainer({ data: train, seed: 1 }).trainSteps(a, { steps: 5 })
    await new LocalTrainer({ data: train, seed: 1 }).trainSteps(b, { steps: 5, rng: createRng(99) })
    expect(stateDistance(getState(a), getState(b))).toBeGreaterThan(0)
  })

  it('stops between batches when the signal aborts, reporting what it did', async () => {
    const model = build(4)
    const trainer = new LocalTrainer({ data: train, seed: 4 })
    const r = await trainer.trainSteps(model, { steps: 1000, batchSize: 8, signal: abortAfterChecks(5) })
    expect(r).toMatchObject({ steps: 5, samples: 40, aborted: true })
    const ac = new AbortController()
    ac.abort()
    const before = getState(model)
    const none = await trainer.trainSteps(model, { steps: 10, signal: ac.signal })
    expect(none).toMatchObject({ steps: 0, samples: 0, aborted: true })
    expect(Number.isNaN(none.loss)).toBe(true)
    expect(stateDistance(before, getState(model))).toBe(0)
  })

  it('lets the event loop run while it trains', async () => {
    const model = build(5)
    const trainer = new LocalTrainer({ data: train, seed: 5 })
    let ranDuringTraining = false
    let finished = false
    setImmediate(() => {
      ranDuringTraining = !finished
    })
    await trainer.trainSteps(model, { steps: 10, yieldEveryMs: 0 })
    finished = true
    expect(ranDuringTraining).toBe(true)
  })

  it('trains on a peer share (walks epochs past the end of a tiny dataset)', async () => {
    const share = partition(train.labels, { spec: 'dirichlet:0.5', peers: 100, seed: 1 })[0]
    const data = selectSamples(train, share)
    const model = build(6)
    const trainer = new LocalTrainer({ data, seed: 6 })
    expect(trainer.size).toBe(share.length)
    const r = await trainer.trainSteps(model, { steps: 10, batchSize: data.count + 3 })
    expect(r.steps).toBe(10)
    expect(Number.isFinite(r.loss)).toBe(true)
  })

  it('rejects bad arguments', async () => {
    const model = build(7)
    const trainer = new LocalTrainer({ data: train, seed: 7 })
    await expect(trainer.trainSteps(model, { steps: -1 })).rejects.toThrow(isInvalidArgument)
    await expect(trainer.trainSteps(model, { steps: 1.5 })).rejects.toThrow(isInvalidArgument)
    await expect(trainer.trainSteps(model, { steps: 1, batchSize: 0 })).rejects.toThrow(isInvalidArgument)
    expect(
      () =>
        new LocalTrainer({ data: { features: new Float32Array(0), labels: new Uint8Array(0), count: 0 } }),
    ).toThrow(isInvalidArgument)
    expect(
      () =>
        new LocalTrainer({ data: { features: new Float32Array(785), labels: new Uint8Array(2), count: 2 } }),
    ).toThrow(isInvalidArgument)
    // Samples of another width than the model's input, or labels beyond its classes.
    const narrow = new LocalTrainer({
      data: { features: new Float32Array(8), labels: new Uint8Array(2), count: 2 },
    })
    await expect(narrow.trainSteps(model, { steps: 1 })).rejects.toThrow(isInvalidArgument)
    const labels = Uint8Array.from([3, 10])
    const wide = new LocalTrainer({ data: { features: new Float32Array(2 * 784), labels, count: 2 } })
    await expect(wide.trainSteps(model, { steps: 1 })).rejects.toThrow(isInvalidArgument)
  })
})

describe('evaluate', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })

  it('does not depend on the batch size and rejects bad input', async () => {
    const model = buildModel(MLP, { seed: 8 })
    try {
      const a = await evaluate(model, evalSet, { batchSize: 500 })
      const b = await evaluate(model, evalSet, { batchSize: 7 })
      expect(a.count).toBe(500)
      expect(b.accuracy).toBe(a.accuracy)
      expect(b.loss).toBeCloseTo(a.loss, 5)
      // Untrained 10-class model: near chance, loss near ln 10.
      expect(a.accuracy).toBeLessThan(0.3)
      expect(a.loss).toBeGreaterThan(1.5)
      await expect(evaluate(model, evalSet, { batchSize: 0 })).rejects.toThrow(isInvalidArgument)
      const short = { ...evalSet, features: evalSet.features.subarray(1) }
      await expect(evaluate(model, short)).rejects.toThrow(isInvalidArgument)
      const ac = new AbortController()
      ac.abort()
      await expect(evaluate(model, evalSet, { signal: ac.signal })).rejects.toThrow()
    } finally {
      model.dispose()
    }
  })
})

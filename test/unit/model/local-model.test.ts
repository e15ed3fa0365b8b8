import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadDataset } from '../../../src/data/registry.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { createLocalModel, type LocalModelInit } from '../../../src/model/local-model.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import { datasetArch, defaultArch } from '../../../src/model/zoo.ts'
import { createRng } from '../../../src/util/rng.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'gl-local-model-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Three Gaussian blobs in 4-D, on raw scales far from [0, 1] (the loader must scale them). */
function blobs(rows: number, seed: number): string {
  const rng = createRng(seed)
  const centers = [
    [10, 200, -3, 0.5],
    [14, 150, -1, 0.2],
    [8, 260, 1, 0.9],
  ]
  const spread = [1, 15, 0.7, 0.12]
  const lines = ['f0,f1,label,f2,f3']
  for (let r = 0; r < rows; r++) {
    const label = r % 3
    const x = centers[label].map((c, k) => (c + spread[k] * rng.normal()).toFixed(4))
    lines.push([x[0], x[1], label, x[2], x[3]].join(','))
  }
  return `${lines.join('\n')}\n`
}

describe('createLocalModel on a CSV dataset', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })

  const init = (): LocalModelInit => {
    const train = path.join(dir, 'train.csv')
    const test = path.join(dir, 'test.csv')
    writeFileSync(train, blobs(300, 1))
    writeFileSync(test, blobs(150, 2))
    const dataset = loadDataset(`csv:${train},${test}`)
    return {
      arch: datasetArch('mlp', dataset, 16),
      dataset,
      partition: 'iid',
      peerIndex: 1,
      peerCount: 2,
      seed: 1,
      initSeed: 3,
      trainSeed: 4,
      batchSize: 16,
      learningRate: 0.01,
      evalSize: 2000,
    }
  }

  it('4 features and 3 classes train an MLP 4-16-3 well above chance in 300 steps', async () => {
    const model = await createLocalModel(init())
    try {
      expect(model.arch).toBe(
        'csv:mlp-4-16-3|dense_0/kernel:4x16,dense_0/bias:16,dense_1/kernel:16x3,dense_1/bias:3',
      )
      // Half of the 300 training rows (iid over 2 peers); evaluation on all 150 test rows.
      expect(model.trainSamples).toBe(150)
      const before = await model.evaluate()
      const r = await model.train(300)
      expect(r.samples).toBe(300 * 16)
      expect(model.getAge()).toBe(300 * 16)
      const after = await model.evaluate()
      expect(after).toBeGreaterThan(0.9)
      expect(after).toBeGreaterThan(before)
    } finally {
      model.dispose()
    }
  })

  it("trains in the slices between yields it was given, or the trainer's default", async () => {
    const spy = vi.spyOn(LocalTrainer.prototype, 'trainSteps')
    const plain = await createLocalModel(init())
    const sliced = await createLocalModel({ ...init(), trainSliceMs: 50 })
    try {
      await plain.train(2)
      await sliced.train(2)
      expect(spy.mock.calls.map((c) => c[1].yieldEveryMs)).toEqual([undefined, 50])
    } finally {
      spy.mockRestore()
      plain.dispose()
      sliced.dispose()
    }
  })

  it('probes any state on its own share without touching its own weights', async () => {
    const model = await createLocalModel(init())
    try {
      const untrained = model.getState()
      await model.train(300)
      const trained = model.getState()
      const evalBefore = await model.evaluate()
      const good = model.probeAccuracy(trained)
      const flipped = {
        ...trained,
        tensors: trained.tensors.map((t) => ({ ...t, values: t.values.map((v) => -4 * v) })),
      }
      expect(good).toBeGreaterThan(0.9)
      expect(model.probeAccuracy(flipped)).toBeLessThan(0.5)
      expect(model.probeAccuracy(untrained)).toBeLessThan(good)
      // Probing other states left the model's own weights where they were.
      expect(await model.evaluate()).toBe(evalBefore)
      expect(model.getState().tensors[0]!.values).toEqual(trained.tensors[0]!.values)
    } finally {
      model.dispose()
    }
  })

  it('refuses an architecture that does not fit the dataset', async () => {
    await expect(createLocalModel({ ...init(), arch: defaultArch('mlp') })).rejects.toThrow(
      expect.objectContaining({ name: 'ArchMismatchError' }),
    )
  })
})

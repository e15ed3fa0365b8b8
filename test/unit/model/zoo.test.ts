import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadMnist } from '../../../src/data/mnist.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { getState } from '../../../src/model/state.ts'
import * as tf from '../../../src/model/tf.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import {
  archFingerprint,
  archTensors,
  buildModel,
  createOptimizer,
  datasetArch,
  defaultArch,
  initialState,
  modelArch,
  namedWeights,
  parseArch,
  validateArch,
} from '../../../src/model/zoo.ts'

const isInvalidArgument = expect.objectContaining({ name: 'InvalidArgumentError' })
const models: tf.LayersModel[] = []
function build(spec: ArchSpec, seed?: number): tf.LayersModel {
  const m = buildModel(spec, seed === undefined ? {} : { seed })
  models.push(m)
  return m
}

/** Plain-JS forward pass written from the ArchSpec contract in types.ts (layout, flatten order). */
function referenceForward(state: ModelState, image: Float32Array): number[] {
  const t = (name: string) => state.tensors.find((x) => x.name === name)!.values
  let features: Float32Array = image
  // Square single-channel input (the only one the CNN takes).
  let h = Math.round(Math.sqrt(image.length))
  let c = 1
  if (state.tensors.some((x) => x.name === 'conv_0/kernel')) {
    for (const [layer, outC] of [
      ['conv_0', 8],
      ['conv_1', 16],
    ] as const) {
      const k = t(`${layer}/kernel`)
      const b = t(`${layer}/bias`)
      const o = h - 2
      const conv = new Float32Array(o * o * outC)
      for (let y = 0; y < o; y++)
        for (let x = 0; x < o; x++)
          for (let oc = 0; oc < outC; oc++) {
            let s = b[oc]
            for (let dy = 0; dy < 3; dy++)
              for (let dx = 0; dx < 3; dx++)
                for (let ic = 0; ic < c; ic++)
                  s += features[((y + dy) * h + (x + dx)) * c + ic] * k[((dy * 3 + dx) * c + ic) * outC + oc]
            conv[(y * o + x) * outC + oc] = Math.max(0, s)
          }
      const p = Math.floor(o / 2)
      const pooled = new Float32Array(p * p * outC)
      for (let y = 0; y < p; y++)
        for (let x = 0; x < p; x++)
          for (let oc = 0; oc < outC; oc++) {
            let m = Number.NEGATIVE_INFINITY
            for (let dy = 0; dy < 2; dy++)
              for (let dx = 0; dx < 2; dx++)
                m = Math.max(m, conv[((2 * y + dy) * o + 2 * x + dx) * outC + oc])
            pooled[(y * p + x) * outC + oc] = m
          }
      features = pooled
      h = p
      c = outC
    }
  }
  const dense = (x: Float32Array, name: string, relu: boolean) => {
    const k = t(`${name}/kernel`)
    const b = t(`${name}/bias`)
    const out = b.length
    const y = new Float32Array(out)
    for (let j = 0; j < out; j++) {
      let s = b[j]
      for (let i = 0; i < x.length; i++) s += x[i] * k[i * out + j]
      y[j] = relu ? Math.max(0, s) : s
    }
    return y
  }
  const logits = dense(dense(features, 'dense_0', true), 'dense_1', false)
  const max = Math.max(...logits)
  const exps = Array.from(logits, (v) => Math.exp(v - max))
  const sum = exps.reduce((a, b) => a + b, 0)
  return exps.map((e) => e / sum)
}

describe('zoo', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose()
  })

  it('lays out tensors exactly as the ArchSpec contract says', () => {
    expect(archTensors({ kind: 'mlp', hidden: 128 })).toEqual([
      { name: 'dense_0/kernel', shape: [784, 128] },
      { name: 'dense_0/bias', shape: [128] },
      { name: 'dense_1/kernel', shape: [128, 10] },
      { name: 'dense_1/bias', shape: [10] },
    ])
    expect(archTensors({ kind: 'cnn', hidden: 64 })).toEqual([
      { name: 'conv_0/kernel', shape: [3, 3, 1, 8] },
      { name: 'conv_0/bias', shape: [8] },
      { name: 'conv_1/kernel', shape: [3, 3, 8, 16] },
      { name: 'conv_1/bias', shape: [16] },
      { name: 'dense_0/kernel', shape: [400, 64] },
      { name: 'dense_0/bias', shape: [64] },
      { name: 'dense_1/kernel', shape: [64, 10] },
      { name: 'dense_1/bias', shape: [10] },
    ])
  })

  it.each([
    { kind: 'mlp', hidden: 128 },
    { kind: 'cnn', hidden: 64 },
  ] as ArchSpec[])('builds $kind with the contract names and shapes', (spec) => {
    const model = build(spec, 1)
    const weights = namedWeights(model).map(({ name, variable }) => ({ name, shape: variable.shape }))
    expect(weights).toEqual(archTensors(spec))
    expect(model.outputs[0].shape).toEqual([null, 10])
    expect(modelArch(model)).toEqual(spec)
  })

  it.each([
    { kind: 'mlp', hidden: 16 },
    { kind: 'cnn', hidden: 12 },
  ] as ArchSpec[])('$kind computes what the contract describes (reference forward pass)', (spec) => {
    const model = build(spec, 2)
    const state = getState(model)
    // Non-zero biases so their placement is checked too.
    for (const t of state.tensors) {
      if (!t.name.endsWith('/bias')) continue
      for (let i = 0; i < t.values.length; i++) t.values[i] = 0.05 * ((i % 3) - 1)
    }
    const images = loadMnist({ split: 'test', limit: 3 }).features
    const shape = spec.kind === 'mlp' ? [3, 784] : [3, 28, 28, 1]
    tf.tidy(() => {
      for (const { name, variable } of namedWeights(model)) {
        const t = state.tensors.find((x) => x.name === name)!
        variable.write(tf.tensor(t.values, t.shape))
      }
    })
    const out = tf.tidy(() => (model.predict(tf.tensor(images, shape)) as tf.Tensor).dataSync())
    for (let s = 0; s < 3; s++) {
      const ref = referenceForward(state, images.subarray(s * 784, (s + 1) * 784))
      for (let j = 0; j < 10; j++) expect(out[s * 10 + j]).toBeCloseTo(ref[j], 5)
    }
  })

  it('same seed gives identical weights, different seeds differ', () => {
    const spec = { kind: 'mlp', hidden: 32 } as ArchSpec
    const a = getState(build(spec, 7))
    const b = getState(build(spec, 7))
    const c = getState(build(spec, 8))
    const d = getState(build(spec))
    const e = getState(build(spec))
    expect(a).toEqual(b)
    expect(a.tensors[0].values).not.toEqual(c.tensors[0].values)
    expect(d.tensors[0].values).not.toEqual(e.tensors[0].values)
    expect(a).toEqual(initialState(spec, 7))
  })

  it('initialises kernels glorot-uniform and biases to zero', () => {
    const state = initialState({ kind: 'cnn', hidden: 64 }, 3)
    for (const t of state.tensors) {
      if (t.name.endsWith('/bias')) {
        expect(t.values.every((v) => v === 0)).toBe(true)
        continue
      }
      const receptive = t.shape.length === 4 ? t.shape[0] * t.shape[1] : 1
      const limit = Math.sqrt(6 / ((t.shape.at(-2)! + t.shape.at(-1)!) * receptive))
      let sq = 0
      let max = 0
      for (const v of t.values) {
        max = Math.max(max, Math.abs(v))
        sq += v * v
      }
      expect(max).toBeLessThanOrEqual(limit)
      // Uniform(-l, l) has variance l^2 / 3.
      expect(Math.sqrt(sq / t.values.length) / (limit / Math.sqrt(3))).toBeGreaterThan(0.8)
      expect(Math.sqrt(sq / t.values.length) / (limit / Math.sqrt(3))).toBeLessThan(1.2)
    }
  })

  it('fingerprints are stable and tell architectures apart', () => {
    expect(archFingerprint({ kind: 'mlp', hidden: 128 })).toBe(
      'mlp-784-128-10|dense_0/kernel:784x128,dense_0/bias:128,dense_1/kernel:128x10,dense_1/bias:10',
    )
    expect(archFingerprint(defaultArch('cnn'))).toBe(
      'cnn-28x28x1-c3x3x8-c3x3x16-64-10|conv_0/kernel:3x3x1x8,conv_0/bias:8,conv_1/kernel:3x3x8x16,conv_1/bias:16,' +
        'dense_0/kernel:400x64,dense_0/bias:64,dense_1/kernel:64x10,dense_1/bias:10',
    )
    const all = [
      archFingerprint({ kind: 'mlp', hidden: 64 }),
      archFingerprint({ kind: 'mlp', hidden: 128 }),
      archFingerprint({ kind: 'cnn', hidden: 64 }),
      archFingerprint({ kind: 'cnn', hidden: 128 }),
    ]
    expect(new Set(all).size).toBe(4)
  })

  it('parses and validates architecture specs', () => {
    expect(parseArch('mlp')).toEqual({ kind: 'mlp', hidden: 128 })
    expect(parseArch('cnn')).toEqual({ kind: 'cnn', hidden: 64 })
    expect(parseArch('mlp:256')).toEqual({ kind: 'mlp', hidden: 256 })
    for (const bad of ['', 'rnn', 'mlp:', 'mlp:0', 'mlp:-1', 'mlp:1.5', 'cnn:99999', 'mlp:12:3']) {
      expect(() => parseArch(bad), bad).toThrow(isInvalidArgument)
    }
    expect(() => validateArch({ kind: 'mlp', hidden: 0 })).toThrow(isInvalidArgument)
    expect(() => buildModel({ kind: 'gru', hidden: 8 } as unknown as ArchSpec)).toThrow(isInvalidArgument)
    expect(() => defaultArch('x' as never)).toThrow(isInvalidArgument)
  })

  it('creates an optimizer per model and rejects bad learning rates', () => {
    const a = build({ kind: 'mlp', hidden: 8 }, 1)
    const b = build({ kind: 'mlp', hidden: 8 }, 1)
    expect(a.optimizer).toBeDefined()
    expect(a.optimizer).not.toBe(b.optimizer)
    for (const lr of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => createOptimizer('adam', lr)).toThrow(isInvalidArgument)
    }
    expect(() => createOptimizer('rmsprop' as never)).toThrow(isInvalidArgument)
  })
})

describe('zoo: shapes from the dataset', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose()
  })

  const mnist = { name: 'mnist', featureShape: [28, 28, 1], numClasses: 10 }
  const fashion = { name: 'fashion-mnist', featureShape: [28, 28, 1], numClasses: 10 }
  const csv = { name: 'csv', featureShape: [4], numClasses: 3 }
  const isUnsupportedInput = expect.objectContaining({ name: 'UnsupportedInputError' })

  it('MNIST gets exactly the default specs and fingerprints (checkpoints keep loading)', () => {
    for (const kind of ['mlp', 'cnn'] as const) {
      expect(datasetArch(kind, mnist)).toEqual(defaultArch(kind))
      expect(archFingerprint(datasetArch(kind, mnist))).toBe(archFingerprint(defaultArch(kind)))
    }
    expect(datasetArch('mlp', mnist, 64)).toEqual({ kind: 'mlp', hidden: 64 })
  })

  it('other datasets tag the fingerprint with their name', () => {
    const f = archFingerprint(datasetArch('mlp', fashion))
    expect(f).toBe(`fashion-mnist:${archFingerprint(defaultArch('mlp'))}`)
    expect(archTensors(datasetArch('cnn', fashion))).toEqual(archTensors(defaultArch('cnn')))
    expect(archFingerprint(datasetArch('mlp', csv, 16))).toBe(
      'csv:mlp-4-16-3|dense_0/kernel:4x16,dense_0/bias:16,dense_1/kernel:16x3,dense_1/bias:3',
    )
  })

  it('an MLP takes any flat features: 4 features, 3 classes is MLP 4-H-3', () => {
    const spec = datasetArch('mlp', csv, 5)
    const model = build(spec, 3)
    expect(model.inputs[0].shape).toEqual([null, 4])
    expect(model.outputs[0].shape).toEqual([null, 3])
    expect(namedWeights(model).map(({ name, variable }) => ({ name, shape: variable.shape }))).toEqual(
      archTensors(spec),
    )
    expect(modelArch(model)).toEqual(spec)
    const state = getState(model)
    expect(state.arch).toBe(archFingerprint(spec))
    const x = Float32Array.from([0.1, 0.9, 0.4, 0.3])
    const out = tf.tidy(() => (model.predict(tf.tensor(x, [1, 4])) as tf.Tensor).dataSync())
    const ref = referenceForward(state, x)
    for (let j = 0; j < 3; j++) expect(out[j]).toBeCloseTo(ref[j], 5)
  })

  it('the CNN takes any square single-channel image and computes what the contract says', () => {
    const spec = datasetArch('cnn', { name: 'idx', featureShape: [13, 13, 1], numClasses: 3 }, 6)
    // 13 -> conv 11 -> pool 5 -> conv 3 -> pool 1: dense_0 reads 1 x 1 x 16.
    expect(archTensors(spec).find((t) => t.name === 'dense_0/kernel')?.shape).toEqual([16, 6])
    expect(archFingerprint(spec).startsWith('idx:cnn-13x13x1-c3x3x8-c3x3x16-6-3|')).toBe(true)
    const model = build(spec, 4)
    const state = getState(model)
    const x = Float32Array.from({ length: 169 }, (_, i) => ((i * 37) % 101) / 100)
    const out = tf.tidy(() => (model.predict(tf.tensor(x, [1, 13, 13, 1])) as tf.Tensor).dataSync())
    const ref = referenceForward(state, x)
    for (let j = 0; j < 3; j++) expect(out[j]).toBeCloseTo(ref[j], 5)
  })

  it('refuses a CNN for flat, non-square, multi-channel or tiny inputs', () => {
    for (const featureShape of [[4], [28, 14, 1], [28, 28, 3], [9, 9, 1]]) {
      expect(
        () => datasetArch('cnn', { name: 'idx', featureShape, numClasses: 3 }),
        `${featureShape}`,
      ).toThrow(isUnsupportedInput)
    }
    expect(() => datasetArch('mlp', { name: 'idx', featureShape: [300, 300, 1], numClasses: 3 })).toThrow(
      isInvalidArgument,
    )
    expect(() => datasetArch('mlp', { name: 'csv', featureShape: [4], numClasses: 1 })).toThrow(
      isInvalidArgument,
    )
    expect(() => datasetArch('mlp', { name: 'Bad Name', featureShape: [4], numClasses: 3 })).toThrow(
      isInvalidArgument,
    )
  })
})

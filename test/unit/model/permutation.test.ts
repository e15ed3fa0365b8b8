import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadMnist } from '../../../src/data/mnist.ts'
import { initBackend } from '../../../src/model/backend.ts'
import {
  applyPermutation,
  archSpecOf,
  checkPermutationSpec,
  identityPermutations,
  invertPermutation,
  type PermutationSpec,
  permutationSpecFor,
} from '../../../src/model/permutation.ts'
import { getState, setState } from '../../../src/model/state.ts'
import * as tf from '../../../src/model/tf.ts'
import type { ArchSpec } from '../../../src/model/types.ts'
import {
  archFingerprint,
  archTensors,
  buildModel,
  datasetArch,
  initialState,
} from '../../../src/model/zoo.ts'
import { createRng } from '../../../src/util/rng.ts'
import { forward, randomPermutations, randomState, snapshot } from '../merge/fixtures.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 32 }
const CNN: ArchSpec = { kind: 'cnn', hidden: 24 }
const SAMPLES = 16
const images = loadMnist({ split: 'test', limit: SAMPLES }).features
const image = (i: number) => images.subarray(i * 784, (i + 1) * 784)

function maxAbsDiff(a: Float64Array | Float32Array, b: Float64Array | Float32Array): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

describe('permutationSpecFor', () => {
  it.each([MLP, CNN, { kind: 'mlp', hidden: 256 } as ArchSpec])('fits the zoo layout of %o', (arch) => {
    const spec = permutationSpecFor(arch)
    const state = randomState(arch, 1)
    expect(() => checkPermutationSpec(state, spec)).not.toThrow()
    // Input and output units are never permuted.
    const touched = new Set(spec.axes.map((a) => `${a.tensor}:${a.axis}`))
    expect(touched.has('dense_1/kernel:1')).toBe(false)
    expect(touched.has('dense_1/bias:0')).toBe(false)
    expect(touched.has(arch.kind === 'mlp' ? 'dense_0/kernel:0' : 'conv_0/kernel:2')).toBe(false)
  })

  it('infers the arch from a state and refuses layouts it cannot fit', () => {
    expect(archSpecOf(randomState(CNN, 1))).toEqual(CNN)
    expect(archSpecOf(randomState(MLP, 1))).toEqual(MLP)
    const broken = randomState(MLP, 1)
    broken.tensors[2] = { name: 'dense_1/kernel', shape: [31, 10], values: new Float32Array(310) }
    expect(() => archSpecOf(broken)).toThrow(expect.objectContaining({ name: 'ArchMismatchError' }))
  })
})

describe('applyPermutation', () => {
  it('is pure, and the inverse permutation undoes it', () => {
    for (const arch of [MLP, CNN]) {
      const spec = permutationSpecFor(arch)
      const state = randomState(arch, 2)
      const before = snapshot(state)
      const perms = randomPermutations(spec, createRng(3))
      const permuted = applyPermutation(state, spec, perms)
      expect(snapshot(state)).toEqual(before)
      expect(snapshot(permuted)).not.toEqual(before)
      const inverse = Object.fromEntries(Object.entries(perms).map(([g, p]) => [g, invertPermutation(p)]))
      expect(snapshot(applyPermutation(permuted, spec, inverse))).toEqual(before)
      const same = applyPermutation(state, spec, identityPermutations(spec))
      expect(snapshot(same)).toEqual(before)
      expect(same.tensors[0]!.values).not.toBe(state.tensors[0]!.values)
    }
  })

  it('moves whole units: hidden unit i of the result is unit perm[i] of the input', () => {
    const spec = permutationSpecFor(MLP)
    const state = randomState(MLP, 4)
    const perms = randomPermutations(spec, createRng(5))
    const p = perms.dense_0!
    const out = applyPermutation(state, spec, perms)
    const h = MLP.hidden
    for (let i = 0; i < h; i++) {
      expect(out.tensors[1]!.values[i]).toBe(state.tensors[1]!.values[p[i]!])
      expect(out.tensors[0]!.values[100 * h + i]).toBe(state.tensors[0]!.values[100 * h + p[i]!])
      expect(out.tensors[2]!.values[i * 10 + 7]).toBe(state.tensors[2]!.values[p[i]! * 10 + 7])
    }
    expect(out.tensors[3]!.values).toEqual(state.tensors[3]!.values)
  })

  it('refuses permutations of the wrong size or with repeats', () => {
    const spec = permutationSpecFor(MLP)
    const state = randomState(MLP, 1)
    const bad = (p: Int32Array) => () => applyPermutation(state, spec, { dense_0: p })
    expect(bad(new Int32Array(31))).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
    expect(bad(new Int32Array(32))).toThrow(expect.objectContaining({ name: 'InvalidArgumentError' }))
    expect(() => applyPermutation(state, spec, {})).toThrow(
      expect.objectContaining({ name: 'InvalidArgumentError' }),
    )
  })
})

describe('permuting units leaves the function unchanged (plain forward pass, MNIST inputs)', () => {
  it.each([MLP, CNN])('%o', (arch) => {
    const spec = permutationSpecFor(arch)
    const state = randomState(arch, 6)
    const rng = createRng(7)
    for (let trial = 0; trial < 3; trial++) {
      const permuted = applyPermutation(state, spec, randomPermutations(spec, rng))
      for (let i = 0; i < 4; i++) {
        expect(maxAbsDiff(forward(permuted, arch, image(i)), forward(state, arch, image(i)))).toBeLessThan(
          1e-9,
        )
      }
    }
  })

  it('a spec that forgets the flatten blocks does change the CNN (the test can fail)', () => {
    const spec = permutationSpecFor(CNN)
    const wrong: PermutationSpec = {
      groups: spec.groups,
      // Treat only the first 16 rows of dense_0 as conv_1's channels.
      axes: spec.axes.map((a) => (a.repeat === 25 ? { ...a, repeat: 1, stride: 25 } : a)),
    }
    const state = randomState(CNN, 6)
    const perms = randomPermutations(spec, createRng(8))
    const right = applyPermutation(state, spec, perms)
    const bad = applyPermutation(state, wrong, perms)
    expect(maxAbsDiff(forward(right, CNN, image(0)), forward(state, CNN, image(0)))).toBeLessThan(1e-9)
    expect(maxAbsDiff(forward(bad, CNN, image(0)), forward(state, CNN, image(0)))).toBeGreaterThan(1e-4)
  })
})

describe('permuting units of real tfjs models leaves their outputs unchanged', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  const models: tf.LayersModel[] = []
  afterAll(() => {
    for (const m of models) m.dispose()
  })

  it.each([
    { kind: 'mlp', hidden: 128 },
    { kind: 'cnn', hidden: 64 },
  ] as ArchSpec[])('%o', (arch) => {
    const a = buildModel(arch, { seed: 11 })
    const b = buildModel(arch, { seed: 12 })
    models.push(a, b)
    const state = getState(a)
    expect(state.arch).toBe(archFingerprint(arch))
    expect(state.tensors.map((t) => t.name)).toEqual(archTensors(arch).map((t) => t.name))
    // Zero biases would not show a bias left unpermuted: give them values first.
    const rng = createRng(13)
    for (const t of state.tensors)
      if (t.shape.length === 1) for (let k = 0; k < t.values.length; k++) t.values[k] = rng.normal() * 0.1
    setState(a, state)
    const spec = permutationSpecFor(arch)
    setState(b, applyPermutation(state, spec, randomPermutations(spec, rng)))
    expect(snapshot(getState(b))).not.toEqual(snapshot(state))
    const x = tf.tensor(images, arch.kind === 'mlp' ? [SAMPLES, 784] : [SAMPLES, 28, 28, 1])
    const ya = a.predict(x) as tf.Tensor
    const yb = b.predict(x) as tf.Tensor
    const pa = ya.dataSync() as Float32Array
    const pb = yb.dataSync() as Float32Array
    expect(maxAbsDiff(pa, pb)).toBeLessThan(1e-5)
    // The plain forward pass agrees with tfjs: the fixtures model the zoo faithfully.
    const logits = forward(state, arch, image(0))
    const max = Math.max(...logits)
    const exp = logits.map((v) => Math.exp(v - max))
    const sum = exp.reduce((s, v) => s + v, 0)
    expect(
      maxAbsDiff(
        exp.map((v) => v / sum),
        pa.subarray(0, 10),
      ),
    ).toBeLessThan(1e-5)
    tf.dispose([x, ya, yb])
  })
})

describe('permutation specs follow the dataset shape', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  const models: tf.LayersModel[] = []
  afterAll(() => {
    for (const m of models) m.dispose()
  })
  const CSV_MLP = datasetArch('mlp', { name: 'csv', featureShape: [4], numClasses: 3 }, 8)
  // 20 -> conv 18 -> pool 9 -> conv 7 -> pool 3: the flatten repeats conv_1's channels 9 times.
  const IDX_CNN = datasetArch('cnn', { name: 'idx', featureShape: [20, 20, 1], numClasses: 5 }, 6)

  it('infers a spec with the same tensors and permutation spec from a state', () => {
    expect(permutationSpecFor(IDX_CNN).axes.find((a) => a.repeat !== undefined)?.repeat).toBe(9)
    for (const arch of [CSV_MLP, IDX_CNN]) {
      const state = initialState(arch, 1)
      const inferred = archSpecOf(state)
      expect(archTensors(inferred)).toEqual(archTensors(arch))
      expect(permutationSpecFor(inferred)).toEqual(permutationSpecFor(arch))
    }
  })

  it.each([
    ['csv mlp', CSV_MLP, [4]],
    ['20x20 cnn', IDX_CNN, [20, 20, 1]],
  ] as const)('permuting a %s leaves its outputs unchanged', (_, arch, shape) => {
    const a = buildModel(arch, { seed: 21 })
    const b = buildModel(arch, { seed: 22 })
    models.push(a, b)
    const state = getState(a)
    const rng = createRng(23)
    for (const t of state.tensors)
      if (t.shape.length === 1) for (let k = 0; k < t.values.length; k++) t.values[k] = rng.normal() * 0.1
    setState(a, state)
    const spec = permutationSpecFor(arch)
    setState(b, applyPermutation(state, spec, randomPermutations(spec, rng)))
    expect(snapshot(getState(b))).not.toEqual(snapshot(state))
    const size = (shape as readonly number[]).reduce((p, d) => p * d, 1)
    const x = tf.tensor(
      Float32Array.from({ length: 3 * size }, () => rng.next()),
      [3, ...shape],
    )
    const ya = a.predict(x) as tf.Tensor
    const yb = b.predict(x) as tf.Tensor
    expect(maxAbsDiff(ya.dataSync() as Float32Array, yb.dataSync() as Float32Array)).toBeLessThan(1e-5)
    tf.dispose([x, ya, yb])
  })
})

import * as tf from '../../../src/model/tf.ts'
// The reference backend: ./tf.ts leaves it out, and initBackend loads it only when chosen.
import '@tensorflow/tfjs-backend-cpu'
import { beforeAll, describe, expect, it } from 'vitest'
import { loadMnist } from '../../../src/data/mnist.ts'
import { initBackend } from '../../../src/model/backend.ts'
import { conv2dBackpropFilterNHWC } from '../../../src/model/conv-grad.ts'
import { evaluate } from '../../../src/model/evaluate.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import { buildModel } from '../../../src/model/zoo.ts'
import { createRng } from '../../../src/util/rng.ts'

type Pad = 'same' | 'valid'
interface ConvCase {
  x: [number, number, number, number]
  f: [number, number, number, number]
  strides: number | [number, number]
  pad: Pad
}

const CASES: ConvCase[] = [
  { x: [2, 7, 7, 3], f: [3, 3, 3, 4], strides: 1, pad: 'valid' },
  { x: [2, 7, 7, 3], f: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { x: [3, 8, 8, 2], f: [3, 3, 2, 5], strides: 2, pad: 'same' },
  { x: [3, 9, 9, 2], f: [3, 3, 2, 5], strides: 2, pad: 'valid' },
  { x: [2, 9, 8, 3], f: [2, 2, 3, 4], strides: 2, pad: 'valid' },
  { x: [2, 6, 7, 2], f: [5, 5, 2, 3], strides: 1, pad: 'same' },
  { x: [2, 10, 9, 2], f: [3, 4, 2, 3], strides: [1, 2], pad: 'same' },
  { x: [1, 5, 5, 1], f: [1, 1, 1, 1], strides: 1, pad: 'valid' },
  // The zoo CNN's two conv layers.
  { x: [4, 28, 28, 1], f: [3, 3, 1, 8], strides: 1, pad: 'valid' },
  { x: [4, 13, 13, 8], f: [3, 3, 8, 16], strides: 1, pad: 'valid' },
]

function randomArray(size: number, seed: number): Float32Array {
  const rng = createRng(seed)
  return Float32Array.from({ length: size }, () => rng.normal())
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1)

/** Gradients of sum(conv2d(x, f) * r) w.r.t. x and f on the given backend. */
async function convGrads(backend: string, c: ConvCase, xv: Float32Array, fv: Float32Array, rv: Float32Array) {
  await tf.setBackend(backend)
  return tf.tidy(() => {
    const x = tf.tensor4d(xv, c.x)
    const f = tf.tensor4d(fv, c.f)
    const y = tf.conv2d(x, f, c.strides, c.pad)
    const r = tf.tensor(rv.subarray(0, y.size), y.shape)
    const [dx, df] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad), r)),
    )([x, f])
    return { dx: dx.dataSync() as Float32Array, df: df.dataSync() as Float32Array, yShape: y.shape }
  })
}

function expectClose(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length)
  let scale = 1
  for (const v of expected) scale = Math.max(scale, Math.abs(v))
  let worst = 0
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]))
  expect(worst / scale).toBeLessThan(1e-4)
}

describe('wasm conv gradient kernels', () => {
  beforeAll(async () => {
    const info = await initBackend({ prefer: 'wasm' })
    expect(info.name).toBe('wasm')
  })

  it('has the gradient kernels a CNN needs registered on wasm', () => {
    for (const k of ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPoolGrad', 'BatchMatMul']) {
      expect(tf.getKernel(k, 'wasm'), k).toBeDefined()
    }
  })

  it.each(CASES)('matches cpu for x=$x f=$f strides=$strides $pad', async (c) => {
    const xv = randomArray(size(c.x), 1)
    // Sparse input, as after relu: exercises the zero-skipping path too.
    for (let i = 0; i < xv.length; i += 3) xv[i] = 0
    const fv = randomArray(size(c.f), 2)
    const rv = randomArray(size(c.x) * c.f[3], 3)
    const wasm = await convGrads('wasm', c, xv, fv, rv)
    const cpu = await convGrads('cpu', c, xv, fv, rv)
    await tf.setBackend('wasm')
    expect(wasm.yShape).toEqual(cpu.yShape)
    expectClose(wasm.df, cpu.df)
    expectClose(wasm.dx, cpu.dx)
  })

  it('direct reference loop agrees with cpu (the large-input fallback)', async () => {
    const c = CASES[2]
    const xv = randomArray(size(c.x), 4)
    const fv = randomArray(size(c.f), 5)
    const rv = randomArray(size(c.x) * c.f[3], 6)
    const cpu = await convGrads('cpu', c, xv, fv, rv)
    await tf.setBackend('wasm')
    const [b, h, w, inC] = c.x
    const info = tf.backend_util.computeConv2DInfo(c.x, c.f, c.strides, 1, c.pad)
    const dy = rv.subarray(0, size([b, info.outHeight, info.outWidth, c.f[3]]))
    const direct = conv2dBackpropFilterNHWC(xv, dy, {
      batchSize: b,
      inHeight: h,
      inWidth: w,
      inChannels: inC,
      outHeight: info.outHeight,
      outWidth: info.outWidth,
      outChannels: c.f[3],
      filterHeight: c.f[0],
      filterWidth: c.f[1],
      strideHeight: info.strideHeight,
      strideWidth: info.strideWidth,
      padTop: info.padInfo.top,
      padLeft: info.padInfo.left,
    })
    expectClose(Float32Array.from(direct), cpu.df)
  })

  it.each([
    { x: [2, 8, 8, 3], pool: 2, strides: 2, pad: 'valid' as Pad },
    { x: [2, 11, 11, 4], pool: 2, strides: 2, pad: 'valid' as Pad },
    { x: [2, 7, 7, 2], pool: 3, strides: 2, pad: 'same' as Pad },
  ])('maxPool gradient matches cpu for x=$x pool=$pool $pad', async (c) => {
    const xv = randomArray(size(c.x), 7)
    const run = async (backend: string) => {
      await tf.setBackend(backend)
      return tf.tidy(() => {
        const x = tf.tensor4d(xv, c.x as [number, number, number, number])
        const y = tf.maxPool(x, c.pool, c.strides, c.pad)
        const r = tf.tensor(randomArray(y.size, 8), y.shape)
        return tf
          .grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, c.pool, c.strides, c.pad), r)))(
            x,
          )
          .dataSync() as Float32Array
      })
    }
    const wasm = await run('wasm')
    const cpu = await run('cpu')
    await tf.setBackend('wasm')
    expectClose(wasm, cpu)
  })

  it('transposed matMuls (dense-layer gradients) match cpu', async () => {
    const a = randomArray(6 * 5, 9)
    const b = randomArray(5 * 4, 10)
    const run = async (backend: string) => {
      await tf.setBackend(backend)
      return tf.tidy(() => {
        const A = tf.tensor2d(a, [6, 5])
        const B = tf.tensor2d(b, [5, 4])
        return [
          tf.matMul(A, B),
          tf.matMul(tf.transpose(A), B, true, false),
          tf.matMul(A, tf.transpose(B), false, true),
          tf.matMul(tf.transpose(A), tf.transpose(B), true, true),
          tf.matMul(
            tf.reshape(A, [2, 3, 5]),
            tf.transpose(tf.tile(tf.reshape(B, [1, 5, 4]), [2, 1, 1]), [0, 2, 1]),
            false,
            true,
          ),
        ].map((t) => t.dataSync() as Float32Array)
      })
    }
    const wasm = await run('wasm')
    const cpu = await run('cpu')
    await tf.setBackend('wasm')
    for (const [i, w] of wasm.entries()) expectClose(w, cpu[i])
  })

  it('a few steps train the zoo CNN on wasm (loss goes down)', async () => {
    const data = loadMnist({ split: 'train', limit: 512 })
    const model = buildModel({ kind: 'cnn', hidden: 32 }, { seed: 3 })
    try {
      const before = await evaluate(model, data)
      const trainer = new LocalTrainer({ data, seed: 4 })
      const result = await trainer.trainSteps(model, { steps: 40, batchSize: 32 })
      expect(result.steps).toBe(40)
      const after = await evaluate(model, data)
      expect(after.loss).toBeLessThan(before.loss * 0.8)
      expect(after.accuracy).toBeGreaterThan(0.5)
    } finally {
      model.dispose()
    }
  })
})

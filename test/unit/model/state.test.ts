import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { loadMnist } from '../../../src/data/mnist.ts'
import { initBackend } from '../../../src/model/backend.ts'
import {
  cloneState,
  decodeState,
  encodeState,
  getState,
  setState,
  stateByteSize,
  stateDistance,
  stateParamCount,
  validateState,
} from '../../../src/model/state.ts'
import * as tf from '../../../src/model/tf.ts'
import { LocalTrainer } from '../../../src/model/train.ts'
import type { ArchSpec, ModelState } from '../../../src/model/types.ts'
import { archFingerprint, buildModel, initialState } from '../../../src/model/zoo.ts'

const MLP: ArchSpec = { kind: 'mlp', hidden: 16 }
const isInvalidState = expect.objectContaining({ name: 'InvalidStateError' })
const isArchMismatch = expect.objectContaining({ name: 'ArchMismatchError' })

const models: tf.LayersModel[] = []
function build(spec: ArchSpec, seed: number): tf.LayersModel {
  const m = buildModel(spec, { seed })
  models.push(m)
  return m
}

function predict(model: tf.LayersModel): Float32Array {
  const images = loadMnist({ split: 'test', limit: 4 }).features
  return tf.tidy(() => (model.predict(tf.tensor2d(images, [4, 784])) as tf.Tensor).dataSync() as Float32Array)
}

describe('getState / setState', () => {
  beforeAll(async () => {
    await initBackend({ prefer: 'wasm' })
  })
  afterEach(() => {
    for (const m of models.splice(0)) m.dispose()
  })

  it('copies weights out with the arch fingerprint and the given age', () => {
    const model = build(MLP, 1)
    const state = getState(model, { age: 123 })
    expect(state.arch).toBe(archFingerprint(MLP))
    expect(state.age).toBe(123)
    expect(state.tensors.map((t) => t.name)).toEqual([
      'dense_0/kernel',
      'dense_0/bias',
      'dense_1/kernel',
      'dense_1/bias',
    ])
    expect(state).toEqual({ ...initialState(MLP, 1), age: 123 })
    // A copy: writing into it leaves the model alone.
    state.tensors[0].values.fill(9)
    expect(getState(model).tensors[0].values[0]).not.toBe(9)
    expect(getState(model, { arch: 'custom' }).arch).toBe('custom')
  })

  it('round-trips: setState(b, getState(a)) makes b compute what a computes', () => {
    const a = build(MLP, 1)
    const b = build(MLP, 2)
    expect(predict(a)).not.toEqual(predict(b))
    setState(b, getState(a, { age: 5 }))
    expect(getState(b)).toEqual(getState(a))
    expect(predict(b)).toEqual(predict(a))
  })

  it('keeps the optimizer state (Adam moments) across setState', async () => {
    const model = build(MLP, 3)
    const trainer = new LocalTrainer({ data: loadMnist({ split: 'test', limit: 64 }), seed: 1 })
    await trainer.trainSteps(model, { steps: 3, batchSize: 16 })
    const before = await model.optimizer.getWeights()
    expect(before.length).toBeGreaterThan(1)
    const snapshot = before.map((w) => Array.from(w.tensor.dataSync()))
    setState(model, initialState(MLP, 9))
    const after = await model.optimizer.getWeights()
    expect(after.map((w) => Array.from(w.tensor.dataSync()))).toEqual(snapshot)
  })

  it('rejects a state of another architecture with ArchMismatchError', () => {
    const model = build(MLP, 1)
    expect(() => setState(model, initialState({ kind: 'mlp', hidden: 32 }, 1))).toThrow(isArchMismatch)
  })

  it('rejects malformed states with InvalidStateError and leaves the model untouched', () => {
    const model = build(MLP, 1)
    const original = getState(model)
    const broken: Array<[string, (s: ModelState) => void]> = [
      [
        'wrong shape',
        (s) => (s.tensors[1] = { name: 'dense_0/bias', shape: [8, 2], values: new Float32Array(16) }),
      ],
      ['values/shape mismatch', (s) => (s.tensors[1].values = new Float32Array(15))],
      ['missing tensor', (s) => s.tensors.pop()],
      ['renamed tensor', (s) => (s.tensors[3].name = 'dense_9/bias')],
      ['duplicate tensor', (s) => (s.tensors[3] = { ...s.tensors[1], name: 'dense_0/bias' })],
      ['NaN value', (s) => (s.tensors[2].values[5] = Number.NaN)],
      ['infinite value', (s) => (s.tensors[0].values[0] = Number.POSITIVE_INFINITY)],
      ['negative age', (s) => (s.age = -1)],
      [
        'plain array values',
        (s) => (s.tensors[1].values = Array.from(s.tensors[1].values) as unknown as Float32Array),
      ],
    ]
    for (const [what, breakIt] of broken) {
      const state = initialState(MLP, 2)
      breakIt(state)
      expect(() => setState(model, state), what).toThrow(isInvalidState)
    }
    expect(getState(model)).toEqual(original)
  })
})

describe('plain-number helpers', () => {
  it('cloneState is deep', () => {
    const a = initialState(MLP, 1)
    const b = cloneState(a)
    expect(b).toEqual(a)
    b.tensors[0].values[0] += 1
    b.tensors[0].shape[0] = 1
    expect(a.tensors[0].values[0]).not.toBe(b.tensors[0].values[0])
    expect(a.tensors[0].shape[0]).toBe(784)
  })

  it('stateDistance is the L2 norm of the difference', () => {
    const a = initialState(MLP, 1)
    const zero = cloneState(a)
    for (const t of zero.tensors) t.values.fill(0)
    let sq = 0
    for (const t of a.tensors) for (const v of t.values) sq += v * v
    expect(stateDistance(a, a)).toBe(0)
    expect(stateDistance(a, zero)).toBeCloseTo(Math.sqrt(sq), 6)
    const b = cloneState(a)
    b.tensors[3].values[2] += 3
    b.tensors[0].values[7] -= 4
    expect(stateDistance(a, b)).toBeCloseTo(5, 5)
    expect(() => stateDistance(a, initialState({ kind: 'mlp', hidden: 8 }, 1))).toThrow(isArchMismatch)
  })

  it('counts parameters and bytes', () => {
    const s = initialState({ kind: 'mlp', hidden: 128 }, 1)
    expect(stateParamCount(s)).toBe(784 * 128 + 128 + 128 * 10 + 10)
    expect(stateByteSize(s)).toBe(4 * (784 * 128 + 128 + 128 * 10 + 10))
  })
})

describe('encodeState / decodeState', () => {
  const state = (): ModelState => {
    const s = initialState({ kind: 'cnn', hidden: 8 }, 4)
    s.age = 1234.5
    s.tensors[1].values[0] = -0.25
    return s
  }

  it('round-trips exactly', () => {
    const s = state()
    const bytes = encodeState(s)
    expect(bytes.length).toBeGreaterThan(stateByteSize(s))
    expect(decodeState(bytes)).toEqual(s)
    // Also from an unaligned view inside a larger buffer.
    const padded = new Uint8Array(bytes.length + 3)
    padded.set(bytes, 1)
    expect(decodeState(padded.subarray(1, 1 + bytes.length))).toEqual(s)
  })

  it('refuses to encode an invalid state', () => {
    const s = state()
    s.tensors[0].values[0] = Number.NaN
    expect(() => encodeState(s)).toThrow(isInvalidState)
  })

  it('rejects malformed encodings with InvalidStateError', () => {
    const good = encodeState(state())
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength)
    const headerLength = view(good).getUint32(4, true)
    const valuesStart = (8 + headerLength + 3) & ~3
    const withHeader = (header: string) => {
      const h = new TextEncoder().encode(header)
      const out = new Uint8Array(8 + h.length)
      out.set(good.subarray(0, 4))
      view(out).setUint32(4, h.length, true)
      out.set(h, 8)
      return out
    }
    const cases: Array<[string, Uint8Array]> = [
      ['empty', new Uint8Array(0)],
      [
        'bad magic',
        (() => {
          const b = good.slice()
          b[0] = 0x58
          return b
        })(),
      ],
      ['truncated values', good.subarray(0, good.length - 4)],
      [
        'extra bytes',
        (() => {
          const b = new Uint8Array(good.length + 4)
          b.set(good)
          return b
        })(),
      ],
      [
        'header length past the end',
        (() => {
          const b = good.slice()
          view(b).setUint32(4, good.length, true)
          return b
        })(),
      ],
      ['non-JSON header', withHeader('{not json')],
      ['header without tensors', withHeader('{"arch":"x","age":0}')],
      ['negative dimension', withHeader('{"arch":"x","age":0,"tensors":[{"name":"a","shape":[-1]}]}')],
      ['fractional dimension', withHeader('{"arch":"x","age":0,"tensors":[{"name":"a","shape":[0.5]}]}')],
      ['string age', withHeader('{"arch":"x","age":"1","tensors":[]}')],
      [
        'non-finite value',
        (() => {
          const b = good.slice()
          view(b).setFloat32(valuesStart + 8, Number.POSITIVE_INFINITY, true)
          return b
        })(),
      ],
    ]
    for (const [what, bytes] of cases) expect(() => decodeState(bytes), what).toThrow(isInvalidState)
  })

  it('validateState accepts what getState produces', () => {
    expect(() => validateState(state())).not.toThrow()
  })
})

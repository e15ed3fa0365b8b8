import { describe, expect, it } from 'vitest'
import { mnistDataset } from '../../../src/data/mnist.ts'
import { byteStore, floatStore, gather, samplesStore } from '../../../src/data/samples.ts'
import { errorName } from '../error-name.ts'

/** Every row of a store, decoded as floats. */
function decode(store: {
  count: number
  size: number
  write(i: number, out: Float32Array, o: number): void
}) {
  const out = new Float32Array(store.count * store.size)
  for (let i = 0; i < store.count; i++) store.write(i, out, i * store.size)
  return out
}

describe('compact sample stores', () => {
  // 4 rows of 3 bytes; labels 0..3.
  const bytes = Uint8Array.from([0, 51, 255, 10, 20, 30, 102, 204, 1, 7, 8, 9])
  const labels = Uint8Array.from([0, 1, 2, 3])

  it('select keeps bytes as bytes and decodes to what gather decodes, in the order asked', () => {
    const store = byteStore(bytes, labels, 3)
    const picked = store.select([2, 0, 2])
    expect(picked.count).toBe(3)
    expect(picked.size).toBe(3)
    expect(Array.from(picked.labels)).toEqual([2, 0, 2])
    expect(decode(picked)).toEqual(gather(store, [2, 0, 2], 3).features)
    // A copy: the source may go (this is what lets a daemon free the whole split).
    bytes.fill(0)
    expect(decode(picked)[0]).toBeCloseTo(102 / 255, 6)
    bytes.set([0, 51, 255, 10, 20, 30, 102, 204, 1, 7, 8, 9])
  })

  it('float stores select rows too, and Samples wrap as a store of the same rows', () => {
    const features = Float32Array.from([0.5, 1, 2, 3, 4, 5])
    const store = floatStore(features, Uint8Array.from([1, 0]), 3)
    expect(decode(store.select([1]))).toEqual(Float32Array.from([3, 4, 5]))
    const wrapped = samplesStore({ features, labels: Uint8Array.from([1, 0]), count: 2 })
    expect(wrapped.size).toBe(3)
    expect(decode(wrapped)).toEqual(features)
  })

  it('an index out of range is an InvalidArgumentError', () => {
    const store = byteStore(bytes, labels, 3)
    expect(errorName(() => store.select([4]))).toBe('InvalidArgumentError')
    expect(errorName(() => store.select([-1]))).toBe('InvalidArgumentError')
    expect(errorName(() => store.select([1.5]))).toBe('InvalidArgumentError')
  })

  it("MNIST: a peer's share and test subset decode exactly as trainSamples and testSamples do", () => {
    const ds = mnistDataset()
    const indices = [59_999, 7, 31_000, 7]
    const share = ds.trainShare(indices)
    const samples = ds.trainSamples(indices)
    expect(share.count).toBe(4)
    expect(Array.from(share.labels)).toEqual(Array.from(samples.labels))
    expect(decode(share)).toEqual(samples.features)
    const test = ds.testShare(300)
    const reference = ds.testSamples(300)
    expect(Array.from(test.labels)).toEqual(Array.from(reference.labels))
    expect(decode(test)).toEqual(reference.features)
    expect(errorName(() => ds.trainShare([60_000]))).toBe('InvalidArgumentError')
    expect(errorName(() => ds.testShare(0))).toBe('InvalidArgumentError')
  })
})

import { describe, expect, it } from 'vitest'
import { DEFAULT_EVAL_SIZE } from '../../../src/data/constants.ts'
import {
  IMAGE_PIXELS,
  loadMnist,
  loadMnistLabels,
  mnistDataset,
  testSubset,
} from '../../../src/data/mnist.ts'
import { selectSamples } from '../../../src/data/samples.ts'

const isInvalidArgument = expect.objectContaining({ name: 'InvalidArgumentError' })

function range(data: Float32Array): { min: number; max: number } {
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  for (const v of data) {
    if (v < min) min = v
    if (v > max) max = v
  }
  return { min, max }
}

describe('loadMnist', () => {
  it.each([
    ['train', 60_000],
    ['test', 10_000],
  ] as const)('%s split has %i samples, labels 0..9 and pixels in [0, 1]', (split, count) => {
    const data = loadMnist({ split })
    expect(data.count).toBe(count)
    expect(data.labels.length).toBe(count)
    expect(data.features.length).toBe(count * IMAGE_PIXELS)
    const classes = new Set(data.labels)
    expect([...classes].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(range(data.features)).toEqual({ min: 0, max: 1 })
    // Images are mostly background: a mean near 0.13 also shows the scaling is /255.
    const mean = data.features.reduce((a, b) => a + b, 0) / data.features.length
    expect(mean).toBeGreaterThan(0.1)
    expect(mean).toBeLessThan(0.16)
  })

  it('caches the full split per process', () => {
    expect(loadMnist({ split: 'test' })).toBe(loadMnist({ split: 'test' }))
  })

  it('limit and indices select the same samples as the full split', () => {
    const full = loadMnist({ split: 'test' })
    const first = loadMnist({ split: 'test', limit: 5 })
    expect(first.count).toBe(5)
    expect(first.labels).toEqual(full.labels.subarray(0, 5))
    expect(first.features).toEqual(full.features.subarray(0, 5 * IMAGE_PIXELS))
    const picked = loadMnist({ split: 'test', indices: [9999, 3] })
    expect(Array.from(picked.labels)).toEqual([full.labels[9999], full.labels[3]])
    expect(picked.features.subarray(IMAGE_PIXELS)).toEqual(
      full.features.subarray(3 * IMAGE_PIXELS, 4 * IMAGE_PIXELS),
    )
    expect(() => loadMnist({ split: 'test', indices: [10_000] })).toThrow(isInvalidArgument)
    expect(loadMnistLabels('test')).toEqual(full.labels)
  })

  it('testSubset is the first N test images, 2000 by default', () => {
    const full = loadMnist({ split: 'test' })
    const sub = testSubset()
    expect(sub.count).toBe(DEFAULT_EVAL_SIZE)
    expect(DEFAULT_EVAL_SIZE).toBe(2000)
    expect(sub.labels).toEqual(full.labels.subarray(0, 2000))
    expect(testSubset(10_000).count).toBe(10_000)
    for (const bad of [0, 10_001, 1.5]) expect(() => testSubset(bad)).toThrow(isInvalidArgument)
  })

  it('selectSamples copies the chosen rows', () => {
    const data = loadMnist({ split: 'test', limit: 10 })
    const sel = selectSamples(data, [4, 1])
    expect(Array.from(sel.labels)).toEqual([data.labels[4], data.labels[1]])
    expect(sel.features.subarray(0, IMAGE_PIXELS)).toEqual(
      data.features.subarray(4 * IMAGE_PIXELS, 5 * IMAGE_PIXELS),
    )
    expect(() => selectSamples(data, [10])).toThrow(isInvalidArgument)
  })
})

describe('mnistDataset', () => {
  it('is the Dataset view of the same files: name, shape, classes, splits', () => {
    const ds = mnistDataset()
    expect([ds.name, ds.featureShape, ds.numClasses, ds.trainCount, ds.testCount]).toEqual([
      'mnist',
      [28, 28, 1],
      10,
      60_000,
      10_000,
    ])
    const labels = ds.trainLabels()
    expect(labels).toEqual(loadMnistLabels('train'))
    labels[0] = 99 // a copy: the dataset is untouched
    expect(ds.trainLabels()[0]).not.toBe(99)
    const picked = ds.trainSamples([59_999, 7])
    expect(picked).toEqual(loadMnist({ split: 'train', indices: [59_999, 7] }))
    expect(() => ds.trainSamples([60_000])).toThrow(isInvalidArgument)
    expect(ds.testSamples(3)).toEqual(testSubset(3))
    // Larger than the split: all of it.
    expect(ds.testSamples(20_000).count).toBe(10_000)
    for (const bad of [0, -1, 2.5]) expect(() => ds.testSamples(bad)).toThrow(isInvalidArgument)
  })
})

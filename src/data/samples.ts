/**
 * Samples held in memory, decoded on demand: a dataset keeps its splits in their compact form
 * (bytes for images) and writes floats only for the rows a peer asks for.
 */
import { InvalidArgumentError } from '../util/errors.ts'
import { MAX_CLASSES } from './constants.ts'
import type { Dataset, Samples } from './types.ts'
import { featureSize } from './types.ts'

/** One split in its stored form: labels plus a way to write row i's features as floats. */
export interface SampleStore {
  readonly count: number
  readonly labels: Uint8Array
  /** Features per sample (the product of the feature shape). */
  readonly size: number
  /** Writes sample i's features (`size` floats) into `out` at `offset`. */
  write(i: number, out: Float32Array, offset: number): void
  /**
   * A new store holding copies of the given rows, in this order, in the same compact form (bytes
   * stay bytes: a 7500-image MNIST share is 5.9 MB, not 23.5 MB of floats), so the split it came
   * from can be freed. InvalidArgumentError on an index out of range.
   */
  select(indices: ArrayLike<number>): SampleStore
}

/** Copies rows `indices` of a row-major array of `size` values per row, labels alongside. */
function copyRows<T extends Float32Array | Uint8Array>(
  values: T,
  labels: Uint8Array,
  size: number,
  indices: ArrayLike<number>,
  make: (n: number) => T,
): { values: T; labels: Uint8Array } {
  const n = indices.length
  const outValues = make(n * size)
  const outLabels = new Uint8Array(n)
  for (let k = 0; k < n; k++) {
    const i = indices[k]
    checkIndex(i, labels.length)
    outLabels[k] = labels[i]
    outValues.set(values.subarray(i * size, (i + 1) * size), k * size)
  }
  return { values: outValues, labels: outLabels }
}

function checkIndex(i: number, count: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= count) {
    throw new InvalidArgumentError(`sample index ${i} out of range [0, ${count})`)
  }
}

/** A store over features already decoded as floats (count x size, row-major). */
export function floatStore(features: Float32Array, labels: Uint8Array, size: number): SampleStore {
  return {
    count: labels.length,
    labels,
    size,
    write: (i, out, offset) => out.set(features.subarray(i * size, (i + 1) * size), offset),
    select(indices) {
      const rows = copyRows(features, labels, size, indices, (n) => new Float32Array(n))
      return floatStore(rows.values, rows.labels, size)
    },
  }
}

/** A store over unsigned bytes scaled to [0, 1] (x / 255), as IDX images are. */
export function byteStore(bytes: Uint8Array, labels: Uint8Array, size: number): SampleStore {
  return {
    count: labels.length,
    labels,
    size,
    write(i, out, offset) {
      const src = i * size
      for (let p = 0; p < size; p++) out[offset + p] = bytes[src + p] / 255
    },
    select(indices) {
      const rows = copyRows(bytes, labels, size, indices, (n) => new Uint8Array(n))
      return byteStore(rows.values, rows.labels, size)
    },
  }
}

/** A store over Samples (their float features), for code that takes either. */
export function samplesStore(data: Samples): SampleStore {
  const size = data.count > 0 ? data.features.length / data.count : 0
  return floatStore(data.features, data.labels, size)
}

/** Decodes the given rows of a store, in this order. InvalidArgumentError on an index out of range. */
export function gather(store: SampleStore, indices: ArrayLike<number>, size: number): Samples {
  const n = indices.length
  const features = new Float32Array(n * size)
  const labels = new Uint8Array(n)
  for (let k = 0; k < n; k++) {
    const i = indices[k]
    checkIndex(i, store.count)
    labels[k] = store.labels[i]
    store.write(i, features, k * size)
  }
  return { features, labels, count: n }
}

/** InvalidArgumentError unless `classes` is absent or an integer in [2, MAX_CLASSES]. */
export function checkClassCount(classes: number | undefined): void {
  if (classes !== undefined && !(Number.isInteger(classes) && classes >= 2 && classes <= MAX_CLASSES)) {
    throw new InvalidArgumentError(`classes must be an integer in [2, ${MAX_CLASSES}], got ${classes}`)
  }
}

/** [0, 1, ..., n - 1]. */
export function range(n: number): Int32Array {
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) out[i] = i
  return out
}

/** A new Samples holding the given rows of `data` (copies). InvalidArgumentError on an index out of range. */
export function selectSamples(data: Samples, indices: ArrayLike<number>): Samples {
  const size = data.count > 0 ? data.features.length / data.count : 0
  return gather(floatStore(data.features, data.labels, size), indices, size)
}

export interface StoredDatasetInit {
  name: string
  featureShape: readonly number[]
  numClasses: number
  train: SampleStore
  test: SampleStore
}

/** A Dataset over two in-memory stores (what the IDX and CSV loaders build). */
export class StoredDataset implements Dataset {
  readonly name: string
  readonly featureShape: readonly number[]
  readonly numClasses: number
  private readonly train: SampleStore
  private readonly test: SampleStore
  private readonly size: number

  constructor(init: StoredDatasetInit) {
    this.name = init.name
    this.featureShape = Object.freeze([...init.featureShape])
    this.numClasses = init.numClasses
    this.train = init.train
    this.test = init.test
    this.size = featureSize(init.featureShape)
  }

  get trainCount(): number {
    return this.train.count
  }

  get testCount(): number {
    return this.test.count
  }

  trainLabels(): Uint8Array {
    return new Uint8Array(this.train.labels)
  }

  trainSamples(indices: ArrayLike<number>): Samples {
    return gather(this.train, indices, this.size)
  }

  trainShare(indices: ArrayLike<number>): SampleStore {
    return this.train.select(indices)
  }

  testSamples(size: number): Samples {
    if (!Number.isInteger(size) || size < 1) {
      throw new InvalidArgumentError(`eval size must be a positive integer, got ${size}`)
    }
    return gather(this.test, range(Math.min(size, this.test.count)), this.size)
  }

  testShare(size: number): SampleStore {
    if (!Number.isInteger(size) || size < 1) {
      throw new InvalidArgumentError(`eval size must be a positive integer, got ${size}`)
    }
    return this.test.select(range(Math.min(size, this.test.count)))
  }
}

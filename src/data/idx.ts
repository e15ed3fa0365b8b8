/**
 * The IDX format of MNIST and its relatives (LeCun's `train-images-idx3-ubyte` files), plain or
 * gzipped: a big-endian header (magic 00 00 <type> <dims>, then one u32 per dimension) and the
 * values. Only unsigned bytes (type 0x08) are read; images scale to [0, 1] as x / 255.
 */
import { readFileSync } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { MAX_CLASSES } from './constants.ts'
import {
  DatasetReadError,
  LabelCountMismatchError,
  LabelOutOfRangeError,
  MalformedIdxError,
  SplitMismatchError,
  TooFewClassesError,
} from './errors.ts'
import { byteStore, checkClassCount, StoredDataset } from './samples.ts'
import type { Dataset } from './types.ts'
import { featureSize } from './types.ts'

/** IDX type byte of unsigned 8-bit data (the only type the MNIST family uses). */
const IDX_UBYTE = 0x08

/** Reads a whole file, un-gzipping it when it starts with the gzip magic (1f 8b). DatasetReadError. */
export function readDataFile(file: string): Uint8Array {
  let buf: Buffer
  try {
    buf = readFileSync(file)
  } catch (err) {
    throw new DatasetReadError(`cannot read ${file}: ${(err as Error).message}`)
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf)
    } catch (err) {
      throw new DatasetReadError(`${file}: corrupt gzip stream: ${(err as Error).message}`)
    }
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

/** A parsed IDX file: its dimensions (the first counts samples) and its values, without a copy. */
export interface IdxArray {
  dims: number[]
  data: Uint8Array
  /** Byte offset of the first value in the (decompressed) file. */
  dataOffset: number
}

/**
 * Parses IDX bytes of unsigned-byte data with `expectDims` dimensions (any of them when an array).
 * MalformedIdxError naming `file` and the byte offset of the fault (offsets count in the
 * decompressed bytes of a gzipped file).
 */
export function parseIdx(bytes: Uint8Array, expectDims: number | readonly number[], file: string): IdxArray {
  const allowed = typeof expectDims === 'number' ? [expectDims] : expectDims
  if (bytes.length < 4) {
    throw new MalformedIdxError(
      `${file}: truncated at offset ${bytes.length}: the magic number needs 4 bytes`,
    )
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const magic = view.getUint32(0, false)
  const hex = `0x${magic.toString(16).padStart(8, '0')}`
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new MalformedIdxError(`${file}: bad magic number ${hex} at offset 0: not an IDX file`)
  }
  if (bytes[2] !== IDX_UBYTE) {
    throw new MalformedIdxError(
      `${file}: data type 0x${bytes[2].toString(16).padStart(2, '0')} at offset 2 (magic ${hex}): only unsigned bytes (0x08) are supported`,
    )
  }
  const ndim = bytes[3]
  if (!allowed.includes(ndim)) {
    throw new MalformedIdxError(
      `${file}: ${ndim} dimensions at offset 3 (magic ${hex}), expected ${allowed.join(' or ')}`,
    )
  }
  const dataOffset = 4 + 4 * ndim
  if (bytes.length < dataOffset) {
    throw new MalformedIdxError(
      `${file}: truncated at offset ${bytes.length}: the header of ${ndim} dimensions ends at ${dataOffset}`,
    )
  }
  const dims: number[] = []
  for (let i = 0; i < ndim; i++) dims.push(view.getUint32(4 + 4 * i, false))
  const size = dims.reduce((a, b) => a * b, 1)
  const end = dataOffset + size
  if (bytes.length < end) {
    throw new MalformedIdxError(
      `${file}: truncated at offset ${bytes.length}: dimensions [${dims}] need values up to offset ${end}`,
    )
  }
  if (bytes.length > end) {
    throw new MalformedIdxError(
      `${file}: ${bytes.length - end} trailing bytes from offset ${end} after dimensions [${dims}]`,
    )
  }
  return { dims, data: bytes.subarray(dataOffset), dataOffset }
}

/** One split read from an images file and a labels file. */
export interface IdxSplit {
  /** Shape of one sample: [n] (2-D file), [rows, cols, 1] (3-D) or [rows, cols, channels] (4-D). */
  featureShape: number[]
  pixels: Uint8Array
  labels: Uint8Array
  count: number
  /** Largest label (-1 for an empty split). */
  maxLabel: number
}

export interface ReadIdxSplitOptions {
  /** Labels must lie in [0, classes); default MAX_CLASSES. */
  classes?: number
}

/**
 * Reads and checks one split: the images file (2, 3 or 4 dimensions) and a 1-D labels file with as
 * many entries. Typed errors (MalformedIdxError, LabelCountMismatchError, LabelOutOfRangeError,
 * DatasetReadError) name the file and the offset.
 */
export function readIdxSplit(
  imagesFile: string,
  labelsFile: string,
  options: ReadIdxSplitOptions = {},
): IdxSplit {
  const classes = options.classes ?? MAX_CLASSES
  const images = parseIdx(readDataFile(imagesFile), [2, 3, 4], imagesFile)
  const labels = parseIdx(readDataFile(labelsFile), 1, labelsFile)
  const [count, ...rest] = images.dims
  if (labels.dims[0] !== count) {
    throw new LabelCountMismatchError(
      `${imagesFile} holds ${count} samples but ${labelsFile} holds ${labels.dims[0]} labels`,
    )
  }
  if (rest.some((d) => d === 0)) throw new MalformedIdxError(`${imagesFile}: empty sample shape [${rest}]`)
  let maxLabel = -1
  for (let i = 0; i < count; i++) {
    const label = labels.data[i]
    if (label >= classes) {
      throw new LabelOutOfRangeError(
        `${labelsFile}: label ${label} of sample ${i} at offset ${labels.dataOffset + i} is outside [0, ${classes})`,
      )
    }
    if (label > maxLabel) maxLabel = label
  }
  const featureShape = rest.length === 1 ? rest : rest.length === 2 ? [...rest, 1] : rest
  return { featureShape, pixels: images.data, labels: labels.data, count, maxLabel }
}

export interface IdxFiles {
  trainImages: string
  trainLabels: string
  testImages: string
  testLabels: string
}

export interface IdxDatasetInit extends IdxFiles {
  /** The dataset's name (task id, fingerprint). */
  name: string
  /** Number of classes; default the largest label in either split + 1. */
  classes?: number
  /** Required sample shape (e.g. [28, 28, 1] for the MNIST family); any when absent. */
  featureShape?: readonly number[]
}

/** Loads four IDX files (plain or gzipped) as a Dataset. Typed data-layer errors naming the file. */
export function loadIdxDataset(init: IdxDatasetInit): Dataset {
  checkClassCount(init.classes)
  const options = { classes: init.classes }
  return idxDataset(
    init,
    readIdxSplit(init.trainImages, init.trainLabels, options),
    readIdxSplit(init.testImages, init.testLabels, options),
  )
}

/** A Dataset over two splits already read (the MNIST helpers share theirs). */
export function idxDataset(init: IdxDatasetInit, train: IdxSplit, test: IdxSplit): Dataset {
  const shape = train.featureShape
  if (!sameShape(shape, test.featureShape)) {
    throw new SplitMismatchError(
      `${init.trainImages} holds samples of shape [${shape}] but ${init.testImages} holds [${test.featureShape}]`,
    )
  }
  if (init.featureShape !== undefined && !sameShape(shape, init.featureShape)) {
    throw new MalformedIdxError(
      `${init.trainImages}: samples of shape [${shape}], ${init.name} has [${init.featureShape}]`,
    )
  }
  if (train.count === 0) throw new MalformedIdxError(`${init.trainImages}: no samples`)
  if (test.count === 0) throw new MalformedIdxError(`${init.testImages}: no samples`)
  const numClasses = init.classes ?? Math.max(train.maxLabel, test.maxLabel) + 1
  if (numClasses < 2) {
    throw new TooFewClassesError(
      `${init.trainLabels} and ${init.testLabels}: labels span ${numClasses} class, at least 2 are needed`,
    )
  }
  const size = featureSize(shape)
  return new StoredDataset({
    name: init.name,
    featureShape: shape,
    numClasses,
    train: byteStore(train.pixels, train.labels, size),
    test: byteStore(test.pixels, test.labels, size),
  })
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}

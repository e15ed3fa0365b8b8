/**
 * The dataset kinds a `--dataset` spec can name, one registry line each, and the spec syntax:
 * `mnist`, `fashion-mnist`, `idx:TRAIN_IMAGES,TRAIN_LABELS,TEST_IMAGES,TEST_LABELS[,classes=K]`,
 * `csv:TRAIN.csv,TEST.csv[,label=NAME][,classes=K]`.
 */
import path from 'node:path'
import { MAX_CLASSES } from './constants.ts'
import { loadCsvDataset } from './csv.ts'
import { InvalidDatasetSpecError } from './errors.ts'
import { fashionMnistDataset } from './fashion-mnist.ts'
import { loadIdxDataset } from './idx.ts'
import { mnistDataset } from './mnist.ts'
import type { Dataset } from './types.ts'

/** Options a spec may carry after its files, as `key=value`. */
export type DatasetOption = 'label' | 'classes'

/** A parsed `--dataset` spec. */
export interface DatasetSpec {
  kind: DatasetKind
  /** Files in the order the kind lists them (none for the named datasets). */
  files: string[]
  /** csv: the label column's header name (default 'label'). */
  label?: string
  /** idx, csv: the number of classes (default: largest label + 1). */
  classes?: number
}

interface DatasetKindEntry {
  /** Placeholders of the files the spec lists, in order (empty: a named dataset). */
  files: readonly string[]
  options: readonly DatasetOption[]
  load(spec: DatasetSpec): Dataset
}

/** Every dataset kind. The kind is the dataset's name (task id, fingerprint). */
const REGISTRY = {
  mnist: { files: [], options: [], load: () => mnistDataset() },
  'fashion-mnist': { files: [], options: [], load: () => fashionMnistDataset() },
  idx: {
    files: ['TRAIN_IMAGES', 'TRAIN_LABELS', 'TEST_IMAGES', 'TEST_LABELS'],
    options: ['classes'],
    load: ({ files: [trainImages, trainLabels, testImages, testLabels], classes }) =>
      loadIdxDataset({ name: 'idx', trainImages, trainLabels, testImages, testLabels, classes }),
  },
  csv: {
    files: ['TRAIN.csv', 'TEST.csv'],
    options: ['label', 'classes'],
    load: ({ files: [train, test], label, classes }) =>
      loadCsvDataset({ name: 'csv', train, test, label, classes }),
  },
} satisfies Record<string, DatasetKindEntry>

export type DatasetKind = keyof typeof REGISTRY

/** Every kind, in registry order. */
export const DATASET_KINDS = Object.keys(REGISTRY) as DatasetKind[]

const entryOf = (kind: DatasetKind): DatasetKindEntry => REGISTRY[kind]

/** One usage line per kind, e.g. `csv:TRAIN.csv,TEST.csv[,label=NAME][,classes=K]`. */
export const DATASET_USAGE: readonly string[] = DATASET_KINDS.map((kind) => {
  const { files, options } = entryOf(kind)
  const opts = options.map((o) => `[,${o}=${o === 'label' ? 'NAME' : 'K'}]`).join('')
  return files.length === 0 ? kind : `${kind}:${files.join(',')}${opts}`
})

function isKind(s: string): s is DatasetKind {
  return Object.hasOwn(REGISTRY, s)
}

/** Parses a `--dataset` spec; InvalidDatasetSpecError saying what is wrong and what is expected. */
export function parseDatasetSpec(text: string): DatasetSpec {
  if (typeof text !== 'string') throw new InvalidDatasetSpecError('dataset spec must be a string')
  const s = text.trim()
  const colon = s.indexOf(':')
  const kind = colon < 0 ? s : s.slice(0, colon)
  if (!isKind(kind)) {
    throw new InvalidDatasetSpecError(`unknown dataset '${text}': expected ${DATASET_USAGE.join(' | ')}`)
  }
  const entry = entryOf(kind)
  const usage = DATASET_USAGE[DATASET_KINDS.indexOf(kind)]
  if (entry.files.length === 0) {
    if (colon >= 0) throw new InvalidDatasetSpecError(`dataset '${text}': ${kind} takes no files`)
    return { kind, files: [] }
  }
  const spec: DatasetSpec = { kind, files: [] }
  for (const part of colon < 0 ? [] : s.slice(colon + 1).split(',')) {
    const option = /^(label|classes)=(.*)$/.exec(part.trim())
    if (option === null) {
      if (part.trim() === '')
        throw new InvalidDatasetSpecError(`dataset '${text}': empty file name; expected ${usage}`)
      spec.files.push(part.trim())
      continue
    }
    const [, key, value] = option as unknown as [string, DatasetOption, string]
    if (!entry.options.includes(key))
      throw new InvalidDatasetSpecError(`dataset '${text}': ${kind} takes no ${key}= option`)
    if (spec[key] !== undefined) throw new InvalidDatasetSpecError(`dataset '${text}': ${key}= given twice`)
    if (key === 'label') {
      if (value.trim() === '')
        throw new InvalidDatasetSpecError(`dataset '${text}': label= needs a column name`)
      spec.label = value.trim()
    } else {
      const k = Number(value)
      if (!/^\d+$/.test(value.trim()) || k < 2 || k > MAX_CLASSES) {
        throw new InvalidDatasetSpecError(
          `dataset '${text}': classes= must be an integer in [2, ${MAX_CLASSES}]`,
        )
      }
      spec.classes = k
    }
  }
  if (spec.files.length !== entry.files.length) {
    throw new InvalidDatasetSpecError(
      `dataset '${text}': ${kind} needs ${entry.files.length} files, got ${spec.files.length}; expected ${usage}`,
    )
  }
  return spec
}

/** Canonical text of a spec (inverse of parseDatasetSpec). */
export function formatDatasetSpec(spec: DatasetSpec): string {
  if (spec.files.length === 0) return spec.kind
  const opts = [
    ...(spec.label === undefined ? [] : [`label=${spec.label}`]),
    ...(spec.classes === undefined ? [] : [`classes=${spec.classes}`]),
  ]
  return `${spec.kind}:${[...spec.files, ...opts].join(',')}`
}

/**
 * Weak: a daemon keeps only its share, so once every holder has dropped a dataset (MNIST's
 * training split is 47 MB of bytes) the collector frees it instead of a cache keeping it forever.
 */
const loaded = new Map<string, WeakRef<Dataset>>()

/**
 * Loads the dataset a spec names (relative paths from the working directory). Loaded once per
 * process and spec while anyone holds it: daemons in one process share the memory (a host of
 * several daemons holds it while they start). Throws the data layer's typed errors.
 */
export function loadDataset(spec: DatasetSpec | string): Dataset {
  const parsed = typeof spec === 'string' ? parseDatasetSpec(spec) : spec
  const resolved = { ...parsed, files: parsed.files.map((f) => path.resolve(f)) }
  const key = formatDatasetSpec(resolved)
  let dataset = loaded.get(key)?.deref()
  if (dataset === undefined) {
    dataset = entryOf(parsed.kind).load(resolved)
    loaded.set(key, new WeakRef(dataset))
  }
  return dataset
}

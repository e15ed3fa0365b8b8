/**
 * Bring-your-own tabular data: a training and a test CSV file (plain or gzipped). Each starts with
 * a header row; one column (named `label` unless the spec says `label=NAME`) holds integer class
 * labels 0..K-1, every other column a numeric feature. Features are min-max scaled per column with
 * the TRAINING file's minimum and maximum, x' = (x - min) / (max - min) (a constant column:
 * x - min), so training values lie in [0, 1] and test values may fall outside it.
 */
import { DEFAULT_LABEL_COLUMN, MAX_CLASSES } from './constants.ts'
import { LabelOutOfRangeError, MalformedCsvError, SplitMismatchError, TooFewClassesError } from './errors.ts'
import { readDataFile } from './idx.ts'
import { checkClassCount, floatStore, StoredDataset } from './samples.ts'
import type { Dataset } from './types.ts'

/** A decimal number as written in CSV files: 3, -0.5, .25, 1e-3 (no hex, no Infinity, no NaN). */
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/

export interface ParseCsvOptions {
  /** Name of the label column; default 'label'. */
  label?: string
  /** Labels must lie in [0, classes); default MAX_CLASSES. */
  classes?: number
}

/** One CSV file as numbers, before scaling. */
export interface CsvTable {
  file: string
  /** Feature column names, in file order (the label column left out). */
  columns: string[]
  /** count x columns.length raw values, row-major. */
  values: Float64Array
  labels: Uint8Array
  /** 1-based line number of each row, for error messages. */
  lines: Uint32Array
  count: number
  maxLabel: number
}

function cells(line: string): string[] {
  return line.split(',').map((c) => {
    const t = c.trim()
    return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).trim() : t
  })
}

/**
 * Parses CSV text: a header row, then one row per sample (blank lines skipped). MalformedCsvError
 * (no header, no label column, ragged row, non-numeric cell, no rows) and LabelOutOfRangeError
 * name `file` and the 1-based line.
 */
export function parseCsv(text: string, file: string, options: ParseCsvOptions = {}): CsvTable {
  const labelName = options.label ?? DEFAULT_LABEL_COLUMN
  const classes = options.classes ?? MAX_CLASSES
  const lines = text.replace(/^\uFEFF/, '').split('\n')
  let at = 0
  while (at < lines.length && lines[at].trim() === '') at++
  if (at === lines.length) throw new MalformedCsvError(`${file}: empty: a header row is required`)
  const headerLine = at + 1
  const header = cells(lines[at])
  const labelCol = header.indexOf(labelName)
  if (labelCol < 0) {
    throw new MalformedCsvError(
      `${file}: line ${headerLine}: the header has no column named '${labelName}' (a header row is required; label=NAME picks the label column)`,
    )
  }
  const seen = new Set<string>()
  for (const [k, name] of header.entries()) {
    if (name === '') throw new MalformedCsvError(`${file}: line ${headerLine}: column ${k + 1} has no name`)
    if (seen.has(name))
      throw new MalformedCsvError(`${file}: line ${headerLine}: column '${name}' appears twice`)
    seen.add(name)
  }
  const columns = header.filter((_, k) => k !== labelCol)
  if (columns.length === 0) {
    throw new MalformedCsvError(`${file}: line ${headerLine}: no feature columns besides '${labelName}'`)
  }
  const values: number[] = []
  const labels: number[] = []
  const rowLines: number[] = []
  let maxLabel = -1
  for (let i = at + 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue
    const line = i + 1
    const row = cells(lines[i])
    if (row.length !== header.length) {
      throw new MalformedCsvError(
        `${file}: line ${line} has ${row.length} cells, the header (line ${headerLine}) has ${header.length}`,
      )
    }
    for (let k = 0; k < row.length; k++) {
      const cell = row[k]
      const v = Number(cell)
      if (!NUMBER.test(cell) || !Number.isFinite(Math.fround(v))) {
        throw new MalformedCsvError(
          `${file}: line ${line}, column '${header[k]}': '${cell.slice(0, 40)}' is not a number`,
        )
      }
      if (k !== labelCol) {
        values.push(v)
        continue
      }
      if (!Number.isInteger(v) || v < 0 || v >= classes) {
        throw new LabelOutOfRangeError(
          `${file}: line ${line}, column '${labelName}': label ${cell} is not an integer in [0, ${classes})`,
        )
      }
      labels.push(v)
      if (v > maxLabel) maxLabel = v
    }
    rowLines.push(line)
  }
  if (labels.length === 0)
    throw new MalformedCsvError(`${file}: no data rows after the header (line ${headerLine})`)
  return {
    file,
    columns,
    values: Float64Array.from(values),
    labels: Uint8Array.from(labels),
    lines: Uint32Array.from(rowLines),
    count: labels.length,
    maxLabel,
  }
}

/** Per-column minimum and scale (max - min, or 1 for a constant column) of a table. */
export function columnScaling(table: CsvTable): { min: Float64Array; scale: Float64Array } {
  const width = table.columns.length
  const min = new Float64Array(width).fill(Number.POSITIVE_INFINITY)
  const max = new Float64Array(width).fill(Number.NEGATIVE_INFINITY)
  for (let r = 0; r < table.count; r++) {
    for (let c = 0; c < width; c++) {
      const v = table.values[r * width + c]
      if (v < min[c]) min[c] = v
      if (v > max[c]) max[c] = v
    }
  }
  const scale = new Float64Array(width)
  for (let c = 0; c < width; c++) scale[c] = max[c] > min[c] ? max[c] - min[c] : 1
  return { min, scale }
}

/** Scales a table's features with (min, scale) into float32; MalformedCsvError on a value that overflows. */
export function scaleFeatures(
  table: CsvTable,
  scaling: { min: Float64Array; scale: Float64Array },
): Float32Array {
  const width = table.columns.length
  const out = new Float32Array(table.count * width)
  for (let r = 0; r < table.count; r++) {
    for (let c = 0; c < width; c++) {
      const v = (table.values[r * width + c] - scaling.min[c]) / scaling.scale[c]
      out[r * width + c] = v
      if (!Number.isFinite(out[r * width + c])) {
        throw new MalformedCsvError(
          `${table.file}: line ${table.lines[r]}, column '${table.columns[c]}': value scales to ${v} with the training file's range`,
        )
      }
    }
  }
  return out
}

export interface CsvDatasetInit extends ParseCsvOptions {
  /** The dataset's name (task id, fingerprint). */
  name: string
  train: string
  test: string
}

/** Reads both files; the number of classes is `classes` or else the largest label in either file + 1. */
export function loadCsvDataset(init: CsvDatasetInit): Dataset {
  checkClassCount(init.classes)
  const decode = (file: string) => new TextDecoder('utf-8').decode(readDataFile(file))
  const options = { label: init.label, classes: init.classes }
  const train = parseCsv(decode(init.train), init.train, options)
  const test = parseCsv(decode(init.test), init.test, options)
  if (train.columns.join('\0') !== test.columns.join('\0')) {
    throw new SplitMismatchError(
      `${init.test}: feature columns [${test.columns}] differ from ${init.train}'s [${train.columns}]`,
    )
  }
  const numClasses = init.classes ?? Math.max(train.maxLabel, test.maxLabel) + 1
  if (numClasses < 2) {
    throw new TooFewClassesError(
      `${init.train}, ${init.test}: labels span ${numClasses} class, at least 2 are needed`,
    )
  }
  const scaling = columnScaling(train)
  const width = train.columns.length
  return new StoredDataset({
    name: init.name,
    featureShape: [width],
    numClasses,
    train: floatStore(scaleFeatures(train, scaling), train.labels, width),
    test: floatStore(scaleFeatures(test, scaling), test.labels, width),
  })
}

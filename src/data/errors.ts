/**
 * Typed errors of the data layer: callers switch on `name`, never on messages. Every error about
 * a file names the file, and the byte offset (IDX) or line (CSV) where it went wrong.
 */

/** Base of every data-layer error (`instanceof DatasetError` catches them all). */
export abstract class DatasetError extends Error {}

/** A `--dataset` spec that does not parse (unknown kind, wrong number of files, bad option). */
export class InvalidDatasetSpecError extends DatasetError {
  static readonly name = 'InvalidDatasetSpecError'
  override readonly name = 'InvalidDatasetSpecError'
}

/** A named dataset whose package is not installed; the message says how to install it. */
export class DatasetNotInstalledError extends DatasetError {
  static readonly name = 'DatasetNotInstalledError'
  override readonly name = 'DatasetNotInstalledError'
}

/** A file that cannot be read or un-gzipped (missing, unreadable, corrupt gzip stream). */
export class DatasetReadError extends DatasetError {
  static readonly name = 'DatasetReadError'
  override readonly name = 'DatasetReadError'
}

/** An IDX file with a wrong magic number, an unsupported type, or a length its header does not imply. */
export class MalformedIdxError extends DatasetError {
  static readonly name = 'MalformedIdxError'
  override readonly name = 'MalformedIdxError'
}

/** A CSV file without a header or label column, with a ragged row, a non-numeric cell, or no rows. */
export class MalformedCsvError extends DatasetError {
  static readonly name = 'MalformedCsvError'
  override readonly name = 'MalformedCsvError'
}

/** An images file and its labels file that hold different numbers of samples. */
export class LabelCountMismatchError extends DatasetError {
  static readonly name = 'LabelCountMismatchError'
  override readonly name = 'LabelCountMismatchError'
}

/** A label that is not an integer in [0, classes). */
export class LabelOutOfRangeError extends DatasetError {
  static readonly name = 'LabelOutOfRangeError'
  override readonly name = 'LabelOutOfRangeError'
}

/** Labels that span fewer than two classes: nothing to learn. */
export class TooFewClassesError extends DatasetError {
  static readonly name = 'TooFewClassesError'
  override readonly name = 'TooFewClassesError'
}

/** A training and a test split that disagree on the shape of a sample (or on the CSV columns). */
export class SplitMismatchError extends DatasetError {
  static readonly name = 'SplitMismatchError'
  override readonly name = 'SplitMismatchError'
}

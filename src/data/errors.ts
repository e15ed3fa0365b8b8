/** Typed errors of the data layer. */

/** A dataset that cannot be loaded: missing, unreadable or malformed files (the message names the file). */
export class DatasetError extends Error {
  static readonly name = 'DatasetError'
  override readonly name = 'DatasetError'
}

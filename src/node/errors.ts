/** Typed errors of the node layer. */

/** A bad command-line flag or value: the CLI prints it on one line and exits 2. */
export class UsageError extends Error {
  static readonly name = 'UsageError'
  override readonly name = 'UsageError'
}

/** A file in the data dir that cannot be used (wrong permissions, corrupt). */
export class DataDirError extends Error {
  static readonly name = 'DataDirError'
  override readonly name = 'DataDirError'
}

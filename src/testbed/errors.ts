/** Typed errors of the testbed's own facilities. */

/** A host file (the testbed's list of daemons for one `--peers-per-process` process) is unreadable or malformed. */
export class HostFileError extends Error {
  static readonly name = 'HostFileError'
  override readonly name = 'HostFileError'
}

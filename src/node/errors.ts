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

/** `--data-dir` names a file, or a directory that cannot be created or written. */
export class DataDirUnusableError extends Error {
  static readonly name = 'DataDirUnusableError'
  override readonly name = 'DataDirUnusableError'
}

/** A file-system step in the data dir did not finish in time (a hung network mount, a special file system). */
export class DataDirTimeoutError extends Error {
  static readonly name = 'DataDirTimeoutError'
  override readonly name = 'DataDirTimeoutError'
}

/** A `--listen` address could not be bound (the port is in use, or the address is not on this host). */
export class ListenAddressError extends Error {
  static readonly name = 'ListenAddressError'
  override readonly name = 'ListenAddressError'
}

/** The `--http` port is in use on the HTTP host. */
export class HttpPortInUseError extends Error {
  static readonly name = 'HttpPortInUseError'
  override readonly name = 'HttpPortInUseError'
}

/** Startup was aborted (a signal arrived before the node was up). */
export class StartupAbortedError extends Error {
  static readonly name = 'StartupAbortedError'
  override readonly name = 'StartupAbortedError'
}

/** `peers.json` in the data dir cannot be read or is not a peer list: the node warns and starts with no remembered peers. */
export class PeerBookError extends Error {
  static readonly name = 'PeerBookError'
  override readonly name = 'PeerBookError'
}

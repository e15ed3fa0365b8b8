/** Typed errors of the model layer: callers switch on `name`, never on messages. */

export class ArchMismatchError extends Error {
  static readonly name = 'ArchMismatchError'
  override readonly name = 'ArchMismatchError'
}

export class InvalidStateError extends Error {
  static readonly name = 'InvalidStateError'
  override readonly name = 'InvalidStateError'
}

/** An architecture that cannot take a dataset's samples (the CNN on anything but square one-channel images). */
export class UnsupportedInputError extends Error {
  static readonly name = 'UnsupportedInputError'
  override readonly name = 'UnsupportedInputError'
}

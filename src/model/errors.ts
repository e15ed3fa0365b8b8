/** Typed errors of the model layer: callers switch on `name`, never on messages. */

export class ArchMismatchError extends Error {
  static readonly name = 'ArchMismatchError'
  override readonly name = 'ArchMismatchError'
}

export class InvalidStateError extends Error {
  static readonly name = 'InvalidStateError'
  override readonly name = 'InvalidStateError'
}

export class InvalidArgumentError extends Error {
  static readonly name = 'InvalidArgumentError'
  override readonly name = 'InvalidArgumentError'
}

export class DatasetError extends Error {
  static readonly name = 'DatasetError'
  override readonly name = 'DatasetError'
}

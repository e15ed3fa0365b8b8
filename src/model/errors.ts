/** Typed errors of the model layer: callers switch on `name`, never on messages. */

export class ArchMismatchError extends Error {
  static readonly name = 'ArchMismatchError'
  override readonly name = 'ArchMismatchError'
}

export class InvalidStateError extends Error {
  static readonly name = 'InvalidStateError'
  override readonly name = 'InvalidStateError'
}

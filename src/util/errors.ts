/** Errors shared by every layer: callers switch on `name`, never on messages. */

/** A caller passed a value outside what a function accepts (a programming or configuration error). */
export class InvalidArgumentError extends Error {
  static readonly name = 'InvalidArgumentError'
  override readonly name = 'InvalidArgumentError'
}

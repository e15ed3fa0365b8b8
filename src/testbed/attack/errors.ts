/** Errors of the testbed's attack facility. */

/** A `--byzantine K:MODE` spec that does not parse (bad count, unknown mode). */
export class InvalidByzantineSpecError extends Error {
  static readonly name = 'InvalidByzantineSpecError'
  override readonly name = 'InvalidByzantineSpecError'
}

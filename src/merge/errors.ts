/** Typed errors of the merge layer: callers switch on `name`, never on messages. */

/** A merge mode that is neither a registered pipeline name nor a comma-separated list of steps. */
export class UnknownMergePipelineError extends Error {
  static readonly name = 'UnknownMergePipelineError'
  override readonly name = 'UnknownMergePipelineError'
}

/** A pipeline names a step the registry does not hold. */
export class UnknownMergeStepError extends Error {
  static readonly name = 'UnknownMergeStepError'
  override readonly name = 'UnknownMergeStepError'
}

/** Steps in an order that cannot run: not exactly one combine step, or a step on the wrong side of it. */
export class InvalidMergePipelineError extends Error {
  static readonly name = 'InvalidMergePipelineError'
  override readonly name = 'InvalidMergePipelineError'
}

/** The types every dataset shares: what the model layer trains and evaluates on. */
import type { SampleStore } from './samples.ts'

/** Labelled samples, features flattened row-major (count x product(featureShape)), labels 0..K-1. */
export interface Samples {
  features: Float32Array
  labels: Uint8Array
  count: number
}

export type Split = 'train' | 'test'

/**
 * One learning task's data: its shape, its classes and its two splits. Loading is split in two
 * so a peer never decodes the whole training set: partition on `trainLabels()`, then decode only
 * its share with `trainSamples(indices)`.
 */
export interface Dataset {
  /** Short name ('mnist', 'fashion-mnist', 'idx', 'csv'): part of the task id and the arch fingerprint. */
  readonly name: string
  /** Shape of one sample: [28, 28, 1] for MNIST images (rows, columns, channels), [4] for 4 CSV columns. */
  readonly featureShape: readonly number[]
  /** Labels are integers in [0, numClasses). */
  readonly numClasses: number
  readonly trainCount: number
  readonly testCount: number
  /** Labels of the training split, in sample order (a copy: callers may mutate it). */
  trainLabels(): Uint8Array
  /** The given training samples, decoded in this order. InvalidArgumentError on an index out of range. */
  trainSamples(indices: ArrayLike<number>): Samples
  /**
   * The given training samples, copied in this order in the dataset's compact form (bytes for
   * images) and decoded row by row as training asks: what a peer keeps for its whole run.
   * InvalidArgumentError on an index out of range.
   */
  trainShare(indices: ArrayLike<number>): SampleStore
  /**
   * The first min(size, testCount) test samples: every peer evaluates on the same ones, so their
   * accuracies compare. InvalidArgumentError unless size is a positive integer.
   */
  testSamples(size: number): Samples
  /** The same test samples as testSamples(size), copied in the compact form: what a peer keeps to evaluate on. */
  testShare(size: number): SampleStore
}

/** Number of feature values per sample (the product of the feature shape). */
export function featureSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1)
}
